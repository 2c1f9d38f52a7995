"""A notebook submission graded for real (intake, the Docker sandbox, the grader stage):
its executed notebook is stored stripped and sanitised, shown on the submission page
with the failing cell linked, and downloadable by its learner and the course staff only."""

from __future__ import annotations

import json
import re

import pytest

from courses.models import CourseStaff
from grading.models import ExecutedNotebook, Submission
from tests.grading.notebook_submission import (
    FAILING_CELL,
    HIDDEN_MARK,
    PRINTED,
    READS_GRADER,
    failing_notebook,
    hostile_notebook,
    probe_case_markers,
)
from tests.grading.test_grade_command import by_name, grade

NOTEBOOK_CHECK = "the notebook runs top to bottom"


@pytest.fixture
def graded(sample_course, learner, tmp_path):
    code, document, err = grade(
        "mlops-foundations/validate-data", str(failing_notebook(tmp_path)), "--json", "--user", learner.email
    )
    assert code == 0, err
    return Submission.objects.get(pk=document["submission"]), document


def test_the_executed_notebook_is_captured_stripped_and_sanitised(graded):
    submission, document = graded
    assert document["status"] == "failed"
    tests = by_name(document)
    assert tests[NOTEBOOK_CHECK]["status"] == "failed"
    assert f"cell {FAILING_CELL} (raise ValueError" in tests[NOTEBOOK_CHECK]["output"]
    assert tests["clean() drops rows with nulls"]["status"] == "passed"

    stored = ExecutedNotebook.objects.get(submission=submission)
    assert stored.note == "" and stored.finished is False and stored.flagged_cell == FAILING_CELL
    assert PRINTED in stored.html and "(455, 31)" in stored.html
    assert "<table" in stored.html  # df.head() as pandas' HTML table
    assert f'<section class="nb-cell nb-cell-flagged" id="nb-cell-{FAILING_CELL}">' in stored.html
    assert "the last cell fails on purpose" in stored.html
    for text in (stored.html, stored.ipynb):
        assert HIDDEN_MARK not in text
        # The grader's probe cells (they carry hidden inputs) never reach the learner.
        assert "shipwright-probe" not in text and "probe_cases" not in text
    # What the learner printed or wrote as HTML is shown as text or sanitised, never active.
    assert not re.search(r"<script|<[^>]*\bon[a-z]+\s*=", stored.html)
    assert "&lt;img src=x onerror=alert(1)&gt;" in stored.html
    cells = json.loads(stored.ipynb)["cells"]
    assert len(cells) == FAILING_CELL - 1  # every cell but the hidden one
    assert cells[-1]["outputs"][0]["ename"] == "ValueError"


def test_the_submission_page_links_the_failing_check_to_its_cell_and_lesson(graded, client, learner):
    submission, _ = graded
    client.force_login(learner)
    page = client.get(submission.get_absolute_url()).content.decode()
    assert "Your notebook as it ran" in page
    assert f'href="#nb-cell-{FAILING_CELL}"' in page
    assert f"See cell {FAILING_CELL} in your executed notebook" in page
    assert (
        'href="/courses/mlops-foundations/data-validation/why-data-breaks/#notebooks-are-fine-if-they-are-code"' in page
    )
    assert f"/submissions/{submission.pk}/notebook.ipynb" in page


def test_only_the_learner_and_course_staff_download_the_executed_notebook(
    graded, client, learner, other_learner, instructor
):
    submission, _ = graded
    url = f"/submissions/{submission.pk}/notebook.ipynb"
    client.force_login(learner)
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="validate-data-executed.ipynb"'
    assert HIDDEN_MARK not in response.content.decode()
    assert len(json.loads(response.content)["cells"]) == FAILING_CELL - 1

    client.force_login(other_learner)
    assert client.get(url).status_code == 404
    assert client.get(submission.get_absolute_url()).status_code == 404
    client.logout()
    assert client.get(url).status_code == 404

    client.force_login(instructor)  # site staff without a role on the course: no
    assert client.get(url).status_code == 404
    CourseStaff.objects.create(user=instructor, course=submission.lab.course, role=CourseStaff.Role.TA)
    assert client.get(url).status_code == 200


def test_a_cell_printing_everything_under_grader_shows_no_hidden_probe_case(sample_course, learner, tmp_path, client):
    """The learner sees the run that had only the runner script mounted; the grader's
    run (probe cases mounted) keeps no cell output, and its feedback quotes no
    learner-controlled text (error message or exception class name)."""
    code, document, err = grade(
        "mlops-foundations/validate-data", str(hostile_notebook(tmp_path)), "--json", "--user", learner.email
    )
    assert code == 0, err
    submission = Submission.objects.get(pk=document["submission"])
    stored = ExecutedNotebook.objects.get(submission=submission)
    assert f"{READS_GRADER} 1 files" in stored.html  # it ran, with only the runner script mounted
    assert "run_notebook.py" in stored.html  # the one file that run had under /grader

    client.force_login(learner)
    page = client.get(submission.get_absolute_url()).content.decode()
    download = client.get(f"/submissions/{submission.pk}/notebook.ipynb").content.decode()
    attempts = client.get(submission.lab.get_absolute_url()).content.decode()
    assert READS_GRADER in page and READS_GRADER in download
    seen = {"page": page, "download": download, "lab page": attempts, "--json": json.dumps(document)}
    for marker in probe_case_markers():
        for where, text in seen.items():
            assert marker not in text, f"{marker!r} from the hidden probe cases is in the {where}"
    tests = by_name(document)
    assert tests[NOTEBOOK_CHECK]["status"] == "failed"
    assert "raised an exception: your executed notebook shows the error" in tests[NOTEBOOK_CHECK]["output"]
    assert tests["clean() drops rows with nulls"]["status"] == "passed"  # the probes still ran
