"""The LTI flows in Chromium: the test LMS's pages post forms to Shipwright the way
an LMS does, Shipwright's deep-linking answer posts itself back under the site's
Content-Security-Policy (a static script, form-action opened to that LMS only), and a
student's click lands signed in on the lab.

The LMS (127.0.0.1) and Shipwright's live server (localhost) are different sites for
the browser, so its form posts are cross-site. Over plain HTTP the launch's state cookie
travels under Chromium's two-minute allowance for cookies without a SameSite attribute;
the SameSite=None; Secure cookies production sets over HTTPS are checked in
test_launch.py."""

from __future__ import annotations

import pytest

from tests.lti.platform import INSTRUCTOR, LEARNER, TestPlatform

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def live_lms(transactional_db, live_server, settings, tmp_path):
    from courses.importer import content_import
    from lti import keys
    from lti.models import Platform
    from lti.views import tool_urls
    from tests.grading.tiny_lab import make_tiny_course

    settings.SITE_URL = live_server.url
    settings.SHIPWRIGHT_LTI_KEY_DIR = tmp_path / "lti-keys"
    keys.generate_key()
    content_import(make_tiny_course(tmp_path / "content"))
    urls = tool_urls()
    lms = TestPlatform(
        tool_login_url=urls["login"], tool_launch_url=urls["launch"], tool_deep_link_url=urls["deep_link"]
    )
    lms.trust_tool_keys(keys.jwks())
    Platform.objects.create(
        name="Test LMS",
        issuer=lms.issuer,
        client_id=lms.client_id,
        deployment_ids=[lms.deployment_id],
        auth_login_url=lms.auth_login_url,
        auth_token_url=lms.token_url,
        key_set_url=lms.jwks_url,
    )
    yield lms
    lms.close()


def test_an_instructor_adds_a_lab_and_a_student_opens_it(page, browser, live_lms):
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text) if "Content Security" in message.text else None)
    live_lms.next_launch = {"user_id": "prof", "roles": [INSTRUCTOR], "deep_link": True, "with_services": False}
    page.goto(live_lms.login_initiation_url(user_id="prof", deep_link=True))
    page.get_by_role("button", name="Add lab: Tiny lab").click()
    page.get_by_text("Added to the LMS course: Tiny lab").wait_for()
    (item,) = live_lms.deep_link_items
    assert item["custom"] == {"shipwright_course": "tiny-course", "shipwright_lab": "tiny"}
    assert violations == []

    student = browser.new_context().new_page()
    live_lms.next_launch = {"user_id": "stu", "roles": [LEARNER], "name": "Stu Dent", "custom": item["custom"]}
    student.goto(live_lms.login_initiation_url(user_id="stu"))
    student.get_by_role("heading", name="Lab: Tiny lab").wait_for()
    assert student.url.endswith("/labs/tiny-course/tiny/")
    assert student.get_by_role("button", name="Log out").count() == 1  # signed in
