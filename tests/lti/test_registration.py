"""Site staff register LMSs on the "Connect an LMS" page; the tool key is kept like
the certificate key but apart from it, rotated with its own command, published as JWKS."""

from __future__ import annotations

import io

from django.core.management import call_command

from lti.models import Platform
from tests.factories import UserFactory
from tests.lti.conftest import text_of

FORM = {
    "name": "University Canvas",
    "issuer": "https://canvas.instructure.com",
    "client_id": "10000000000001",
    "deployment_ids": "1:abc\n2:def\n",
    "auth_login_url": "https://sso.canvaslms.com/api/lti/authorize_redirect",
    "auth_token_url": "https://sso.canvaslms.com/login/oauth2/token",
    "key_set_url": "https://sso.canvaslms.com/api/lti/security/jwks",
    "active": "on",
}


def test_site_staff_see_the_tool_s_urls_and_register_several_platforms(client, lti_key):
    client.force_login(UserFactory(email="ops@example.com", is_staff=True))
    page = text_of(client.get("/lti/platforms/"))
    for url in ("/lti/login/", "/lti/launch/", "/lti/deep-link/", "/lti/jwks.json"):
        assert f"http://127.0.0.1:8000{url}" in page
    assert f"Current tool key: {lti_key}" in page
    assert client.post("/lti/platforms/new/", FORM).status_code == 302
    moodle = {
        **FORM,
        "name": "Faculty Moodle",
        "issuer": "https://moodle.uni.example",
        "client_id": "AbC123",
        "deployment_ids": "7",
    }
    assert client.post("/lti/platforms/new/", moodle).status_code == 302
    canvas = Platform.objects.get(name="University Canvas")
    assert canvas.deployment_ids == ["1:abc", "2:def"]
    page = text_of(client.get("/lti/platforms/"))
    assert "University Canvas" in page and "Faculty Moodle" in page


def test_a_registration_without_a_deployment_is_refused_with_the_field_named(client, lti_key):
    client.force_login(UserFactory(email="ops@example.com", is_staff=True))
    response = client.post("/lti/platforms/new/", {**FORM, "deployment_ids": "  \n"})
    assert response.status_code == 200
    assert "Give at least one deployment id." in text_of(response)
    assert not Platform.objects.exists()


def test_the_same_client_id_cannot_be_registered_twice(client, lti_key):
    client.force_login(UserFactory(email="ops@example.com", is_staff=True))
    client.post("/lti/platforms/new/", FORM)
    response = client.post("/lti/platforms/new/", {**FORM, "name": "Again"})
    assert response.status_code == 200
    assert Platform.objects.count() == 1


def test_learners_and_anonymous_visitors_cannot_open_the_connect_page(client, learner):
    assert client.get("/lti/platforms/").status_code == 302
    client.force_login(learner)
    assert client.get("/lti/platforms/").status_code == 302
    assert client.post("/lti/platforms/new/", FORM).status_code == 302
    assert not Platform.objects.exists()


def test_rotation_keeps_the_old_key_published_and_never_touches_the_certificate_key(client, settings, lti_key):
    before = client.get("/lti/jwks.json").json()["keys"]
    assert len(before) == 1 and before[0]["alg"] == "RS256" and before[0]["use"] == "sig"
    assert "d" not in before[0]  # public half only
    out = io.StringIO()
    call_command("generate_lti_key", stdout=out)
    assert "Created LTI tool key key-2" in out.getvalue()
    after = client.get("/lti/jwks.json").json()["keys"]
    assert [k["kid"] for k in after][:1] == [before[0]["kid"]] and len(after) == 2
    assert sorted(p.name for p in settings.SHIPWRIGHT_LTI_KEY_DIR.iterdir()) == ["key-1.pem", "key-2.pem"]
    assert settings.SHIPWRIGHT_LTI_KEY_DIR != settings.SHIPWRIGHT_SIGNING_KEY_DIR
    out = io.StringIO()
    call_command("generate_lti_key", "--if-missing", stdout=out)
    assert "already exists" in out.getvalue()


def test_without_a_key_login_initiation_says_so(client, settings, tmp_path, lms):
    settings.SHIPWRIGHT_LTI_KEY_DIR = tmp_path / "empty"
    from tests.lti.conftest import local

    response = client.get(local(lms.login_initiation_url(user_id="u")))
    assert response.status_code == 503
    assert "no LTI key yet" in text_of(response)
