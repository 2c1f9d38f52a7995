"""A graded notebook submission in Chromium: the executed notebook's outputs are on the
page, and the failing check's link lands on the highlighted cell (no inline script
needed: an anchor and CSS)."""

from __future__ import annotations

import pytest

from tests.browser.conftest import log_in
from tests.grading.notebook_submission import FAILING_CELL, HIDDEN_MARK, PRINTED, failing_notebook
from tests.grading.test_grade_command import grade

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def graded_submission(learner, tmp_path):
    from courses.importer import content_import
    from grading.models import Submission
    from tests.conftest import CONTENT

    content_import(CONTENT)
    code, document, err = grade(
        "mlops-foundations/validate-data", str(failing_notebook(tmp_path)), "--json", "--user", learner.email
    )
    assert code == 0, err
    return Submission.objects.get(pk=document["submission"])


def test_a_learner_follows_the_failing_check_to_the_highlighted_cell(page, live_server, learner, graded_submission):
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    log_in(page, live_server, learner)
    page.goto(live_server.url + graded_submission.get_absolute_url())

    notebook = page.locator(".notebook-render")
    assert notebook.is_visible()
    assert PRINTED in notebook.inner_text()
    assert "(455, 31)" in notebook.inner_text()
    assert HIDDEN_MARK not in page.content()

    cell = page.locator(f"#nb-cell-{FAILING_CELL}")
    page.get_by_role("link", name=f"See cell {FAILING_CELL} in your executed notebook").click()
    page.wait_for_url(f"**#nb-cell-{FAILING_CELL}")
    assert "nb-cell-flagged" in (cell.get_attribute("class") or "")
    assert cell.is_visible() and cell.evaluate("el => el.matches(':target')")
    box = cell.bounding_box()
    assert box is not None and 0 <= box["y"] < 900  # scrolled into the viewport
    assert "the last cell fails on purpose" in cell.inner_text()
    # Nothing the page or the notebook holds broke the Content Security Policy.
    assert not [e for e in errors if "Content Security Policy" in e]
