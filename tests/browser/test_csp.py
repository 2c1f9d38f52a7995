"""The Content-Security-Policy in a real browser (issue 9): a <script> that reaches a
lesson despite the sanitiser (written straight into the database) does not run, and
htmx's live submission status still works under the policy."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Runs before any page script (through the DevTools protocol, so the policy does not
# apply to it): records every violation the page reports.
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => window.__violations.push(e.effectiveDirective));
"""
INJECTED = (
    '<p id="marker">Lesson text.</p>'
    '<script>window.__pwned = "inline script";</script>'
    '<img src="/static/none.png" onerror="window.__pwned = \'event handler\'">'
    '<a id="js-link" href="javascript:window.__pwned=\'javascript url\'">link</a>'
)


@pytest.fixture
def tiny(transactional_db, tmp_path):
    from courses.importer import content_import
    from labs.models import Lab
    from tests.grading.tiny_lab import make_tiny_course

    content_import(make_tiny_course(tmp_path / "content"))
    return Lab.objects.get(slug="tiny")


def _logged_in(page, live_server, user) -> None:
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    page.context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": live_server.url}])
    page.add_init_script(RECORD_VIOLATIONS)


def test_a_script_that_slipped_into_a_lesson_does_not_run(page, live_server, tiny, learner):
    from courses.models import Enrollment, Lesson

    Enrollment.objects.create(user=learner, course=tiny.course)
    # update() skips the model's save(), so the sanitiser never sees this: the policy is the second wall.
    Lesson.objects.filter(slug="intro").update(body_html=INJECTED)
    _logged_in(page, live_server, learner)
    page.goto(live_server.url + "/courses/tiny-course/basics/intro/")
    assert page.locator("#marker").inner_text() == "Lesson text."
    page.locator("#js-link").click()
    page.wait_for_function("window.__violations.length >= 3")
    assert page.evaluate("window.__pwned") is None
    # The inline <script> and the javascript: link (script-src-elem), the onerror handler (script-src-attr).
    assert sorted(page.evaluate("window.__violations")) == ["script-src-attr", "script-src-elem", "script-src-elem"]
    assert page.evaluate("typeof window.htmx") == "object"  # our own script still loads


def test_live_submission_status_works_under_the_policy(page, live_server, tiny, learner):
    from grading.models import Submission
    from tests.grading.test_regrade import attempt

    submission = attempt(learner, tiny, status=Submission.Status.QUEUED)
    _logged_in(page, live_server, learner)
    page.goto(live_server.url + submission.get_absolute_url())
    with page.expect_response(lambda response: response.url.endswith(f"/submissions/{submission.pk}/status/")):
        pass  # htmx polls the status every second
    Submission.objects.filter(pk=submission.pk).update(
        status=Submission.Status.FAILED, score=40, max_score=100, finished_at=submission.created_at
    )
    page.get_by_text("40 / 100 points").wait_for()  # htmx swapped in (or refreshed to) the verdict
    assert page.evaluate("window.__violations") == []


def test_the_admin_works_under_the_policy(page, live_server, tiny):
    from courses.models import Lesson
    from tests.factories import UserFactory

    _logged_in(page, live_server, UserFactory(is_staff=True, is_superuser=True))
    lesson = Lesson.objects.get(slug="intro")
    page.goto(live_server.url + f"/admin/courses/lesson/{lesson.pk}/change/")
    assert page.evaluate("window.__violations") == []
    page.locator("#id_body_html").fill('<p>Edited</p><script>alert("x")</script>')
    page.get_by_role("button", name="Save", exact=True).click()
    page.get_by_text("was changed successfully").wait_for()
    assert page.evaluate("window.__violations") == []
    lesson.refresh_from_db()
    assert lesson.body_html == "<p>Edited</p>"  # and sanitised on the way in
