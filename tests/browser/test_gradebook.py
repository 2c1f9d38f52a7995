"""The gradebook in Chromium (issue 10): an instructor opens it from the course page
on the sample course with the seeded demo cohort, sorts by a lab's column and
filters by a lab's status and by name; the page works through plain links and a GET
form (no script needed)."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from courses.models import CourseStaff
from tests.browser.conftest import log_in
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _cells(page, column: int) -> list[tuple[str, str]]:
    """(learner e-mail, status) of each row for the lab in `column` (0-based among labs)."""
    return page.eval_on_selector_all(
        "#gradebook tbody tr",
        f"rows => rows.map(r => [r.dataset.email, r.querySelectorAll('td.cell')[{column}].dataset.status])",
    )


def test_an_instructor_sorts_and_filters_the_gradebook(page, live_server, sample_course, settings):
    settings.DEBUG = True
    call_command("seed_demo", learners=12, stdout=io.StringIO())
    teacher = UserFactory(email="teacher@example.com", display_name="Tess Teacher")
    CourseStaff.objects.create(user=teacher, course=sample_course, role=CourseStaff.Role.INSTRUCTOR)
    log_in(page, live_server, teacher)

    page.goto(f"{live_server.url}/courses/mlops-foundations/")
    page.get_by_role("link", name="Gradebook").click()
    page.wait_for_selector("#gradebook")
    assert page.locator("#gradebook tbody tr").count() == 12
    assert page.locator("#gradebook td.cell[data-status=passed]").count() > 0

    # Sort by the train-model column, then the other way (the sorted header shows an
    # arrow, which becomes part of the link's accessible name).
    page.get_by_role("link", name="train-model", exact=True).click()
    page.wait_for_url("**sort=train-model**")
    header = page.locator("th[data-sort=train-model]")
    assert header.get_attribute("aria-sort") == "ascending"
    header.get_by_role("link").click()
    page.wait_for_url("**dir=desc**")
    assert header.get_attribute("aria-sort") == "descending"
    percents = page.eval_on_selector_all(
        "#gradebook tbody tr",
        "rows => rows.map(r => r.querySelectorAll('td.cell')[1].textContent.match(/(\\d+)%/))"
        ".filter(m => m).map(m => Number(m[1]))",
    )
    assert percents and percents == sorted(percents, reverse=True)

    # Who has not passed serve-model? (the form keeps the sort)
    page.select_option("#gb-status", "not_passed")
    page.select_option("#gb-lab", "serve-model")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**status=not_passed**")
    assert "sort=train-model" in page.url and "dir=desc" in page.url
    rows = _cells(page, 2)
    assert rows and all(status != "passed" for _, status in rows)
    assert len(rows) < 12

    page.get_by_role("link", name="Clear filters").click()
    assert page.locator("#gradebook tbody tr").count() == 12

    # And by name or e-mail.
    page.fill("#gb-q", "demo-03")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**q=demo-03**")
    assert [email for email, _ in _cells(page, 0)] == ["demo-03@demo.shipwright.invalid"]
