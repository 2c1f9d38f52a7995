"""A regrade preview in the browser (issue 10): the instructor changes the lab's
grader, previews the regrade of the cohort (graded by a real worker on the low
queue), reads who would flip, applies it, and the learner sees what changed."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from courses.models import CourseStaff
from grading.models import Submission
from tests.browser.conftest import log_in
from tests.factories import UserFactory
from tests.grading.test_safe_regrades import HALF_RIGHT, NO_F1, graded, reimport_v2, solution

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_instructor_previews_a_regrade_reads_the_diff_and_applies_it(
    page, live_server, tiny_lab, worker, instructor, tmp_path
):
    no_f1 = UserFactory(email="nof1@example.com")
    half = UserFactory(email="half@example.com")
    flips_to_fail = graded(no_f1, tiny_lab, solution(tmp_path, "no_f1", NO_F1))
    graded(half, tiny_lab, solution(tmp_path, "half", HALF_RIGHT))
    assert Submission.objects.filter(status="passed").get() == flips_to_fail
    reimport_v2(tmp_path / "content")  # the instructor's new grader
    CourseStaff.objects.create(user=instructor, course=tiny_lab.course, role=CourseStaff.Role.INSTRUCTOR)

    log_in(page, live_server, instructor)
    page.goto(f"{live_server.url}/instructor/labs/tiny-course/tiny/submissions/")
    page.get_by_role("link", name="Preview a regrade").click()
    expect(page.get_by_label("The latest graded submission of each learner")).to_be_checked()
    page.get_by_role("button", name="Preview regrade").click()
    expect(page.locator(".messages")).to_contain_text("Preview started: 2 submission(s)")
    # The worker grades the shadow results; the page follows without a reload.
    expect(page.locator("#regrade-diff")).to_contain_text("All 2 submission(s) graded", timeout=180_000)
    summary = page.locator("table.regrade-summary")
    expect(summary.locator('td[data-change="pass_to_fail"]')).to_have_text("1")
    expect(summary.locator('td[data-change="fail_to_pass"]')).to_have_text("1")
    row = page.locator("table.regrade-rows tr", has_text="nof1@example.com")
    expect(row).to_contain_text("pass → fail")
    expect(row).to_contain_text("out.json reports accuracy and f1: (new) → failed")
    # Nothing live changed yet.
    flips_to_fail.refresh_from_db()
    assert flips_to_fail.status == "passed"

    page.get_by_label("Replace: every submission gets its new result").check()
    page.get_by_role("button", name="Apply regrade").click()
    expect(page.locator(".messages")).to_contain_text("2 result(s) changed")
    expect(page.get_by_role("button", name="Apply regrade")).to_have_count(0)
    flips_to_fail.refresh_from_db()
    assert (flips_to_fail.status, flips_to_fail.score) == ("failed", 80.0)

    page.context.clear_cookies()
    log_in(page, live_server, no_f1)
    page.goto(f"{live_server.url}/submissions/{flips_to_fail.pk}/")
    history = page.get_by_role("region", name="Regrade history")
    expect(history).to_contain_text(re.compile(r"Regraded on \d{4}-\d\d-\d\d: was 100, now 80"))
