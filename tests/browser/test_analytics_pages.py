"""An instructor opens a lab's analytics in Chromium and sees the charts (inline SVG,
no script needed), with the numbers behind each one a click away; and follows the
link from the lab page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.browser.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def taught_lab(tiny_lab, instructor):
    from courses.models import CourseStaff, Enrollment
    from tests.factories import UserFactory
    from tests.grading.factories import SubmissionFactory

    CourseStaff.objects.create(user=instructor, course=tiny_lab.course, role="instructor")
    checks = [c["name"] for c in tiny_lab.spec["checks"]]
    start = timezone.now() - timedelta(days=3)
    for n in range(6):
        learner = UserFactory()
        Enrollment.objects.create(user=learner, course=tiny_lab.course)
        for attempt in range(n % 3 + 1):
            passed = attempt == n % 3 and n % 2 == 0
            failing = set() if passed else {checks[(n + attempt) % len(checks)]}
            submission = SubmissionFactory(
                user=learner,
                lab=tiny_lab,
                status="passed" if passed else "failed",
                score=100.0 if passed else 40.0 + 10 * attempt,
                at=start + timedelta(hours=5 * n + attempt),
                checks={name: "failed" if name in failing else "passed" for name in checks},
            )
            type(submission).objects.filter(pk=submission.pk).update(
                started_at=submission.created_at + timedelta(seconds=3 + n),
                finished_at=submission.created_at + timedelta(seconds=20 + 2 * n),
            )
    return tiny_lab


def test_the_instructor_sees_the_lab_s_charts(page, live_server, instructor, taught_lab, tmp_path):
    log_in(page, live_server, instructor)
    page.goto(f"{live_server.url}/labs/tiny-course/tiny/")
    page.get_by_role("link", name="Analytics").click()
    page.wait_for_url("**/instructor/labs/tiny-course/tiny/analytics/")

    charts = page.locator("svg[role=img]")
    assert charts.count() == 6
    for name in (
        "Pass rate by attempt number",
        "Distribution of best scores",
        "Where attempts fail: checks by attempt number",
        "The check that fails first",
        "Time from first submission to pass",
    ):
        chart = page.get_by_role("img", name=name)
        assert chart.is_visible()
        box = chart.bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 100
    # Bars are drawn: the pass-rate chart has one bar per attempt number seen (1 to 3).
    assert page.get_by_role("img", name="Pass rate by attempt number").locator("rect").count() == 3

    # The numbers behind a chart, for a screen reader or a spreadsheet.
    page.get_by_text("The numbers").first.click()
    table = page.locator("section", has_text="Pass rate by attempt number").locator("table")
    assert table.is_visible()
    assert "6" in table.locator("tbody tr").first.inner_text()

    page.screenshot(path=str(tmp_path / "lab-analytics.png"), full_page=True)


def test_the_course_funnel_is_linked_from_the_course_page(page, live_server, instructor, taught_lab):
    log_in(page, live_server, instructor)
    page.goto(f"{live_server.url}/courses/tiny-course/")
    page.get_by_role("link", name="Analytics: course funnel").click()
    funnel = page.get_by_role("img", name="Course funnel")
    assert funnel.is_visible()
    assert "Enrolled" in funnel.inner_html() and "6 (100%)" in funnel.inner_html()
