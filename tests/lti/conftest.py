from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.grading.conftest import tiny_lab  # noqa: F401  (the tiny course, imported as content)
from tests.lti.platform import TestPlatform


@pytest.fixture
def lti_key(db, settings, tmp_path):
    from lti import keys

    settings.SHIPWRIGHT_LTI_KEY_DIR = tmp_path / "lti-keys"
    key_id, _ = keys.generate_key()
    return key_id


@pytest.fixture
def lms(db, client, lti_key):
    """A running test LMS, registered with Shipwright the way an administrator does."""
    from lti.models import Platform
    from lti.views import tool_urls

    urls = tool_urls()
    platform = TestPlatform(
        tool_login_url=urls["login"], tool_launch_url=urls["launch"], tool_deep_link_url=urls["deep_link"]
    )
    # The LMS administrator pastes Shipwright's JWKS URL; the LMS reads it.
    platform.trust_tool_keys(client.get("/lti/jwks.json").json())
    platform.row = Platform.objects.create(
        name="Test LMS",
        issuer=platform.issuer,
        client_id=platform.client_id,
        deployment_ids=[platform.deployment_id],
        auth_login_url=platform.auth_login_url,
        auth_token_url=platform.token_url,
        key_set_url=platform.jwks_url,
    )
    yield platform
    platform.close()


def local(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def oidc_login(client, lms, *, user_id: str, deep_link: bool = False, secure: bool = False):
    """The browser follows the LMS to Shipwright's login initiation URL; returns
    the parameters of Shipwright's redirect to the LMS's authorization endpoint."""
    response = client.get(local(lms.login_initiation_url(user_id=user_id, deep_link=deep_link)), secure=secure)
    assert response.status_code == 302, response.content[:500]
    location = response["Location"]
    assert location.startswith(lms.auth_login_url + "?")
    return response, dict(parse_qsl(urlsplit(location).query))


def launch(client, lms, *, user_id: str, roles: list[str], secure: bool = False, tamper=None, **claims):
    """A whole LTI launch as a browser makes it: login initiation, the LMS's
    authorization answer (signed id_token), the form post to the launch URL."""
    _, params = oidc_login(client, lms, user_id=user_id, deep_link=claims.get("deep_link", False), secure=secure)
    form = lms.authorize(params, user_id=user_id, roles=roles, **claims)
    id_token = tamper(form["id_token"]) if tamper else form["id_token"]
    response = client.post(local(form["launch_url"]), {"id_token": id_token, "state": form["state"]}, secure=secure)
    response.form = form
    return response


def text_of(response) -> str:
    """The page's text as a person reads it (tags dropped, entities decoded)."""
    import html
    import re

    from django.utils.html import strip_tags

    return re.sub(r"\s+", " ", html.unescape(strip_tags(response.content.decode())))
