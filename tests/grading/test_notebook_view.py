"""The executed notebook as a learner sees it: stripped of hidden cells and sanitised
(no container needed); escalating hints, lesson links and the attempts timeline."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest

from grading import notebook_view
from grading.notebook_view import (
    FLAG_FAILED,
    FLAG_NOT_RUN,
    FLAG_RUNNING,
    NotebookUnreadable,
    notebook_prepare,
    sanitize_notebook_html,
)

CONTENT = Path(__file__).resolve().parents[2] / "content"


def notebook(*cells, state: dict | None = None) -> bytes:
    nb = nbformat.v4.new_notebook()
    nb.cells = list(cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    if state is not None:
        nb.metadata["shipwright"] = state
    return nbformat.writes(nb).encode()


def code(source: str, *outputs, tags=None, **metadata):
    cell = nbformat.v4.new_code_cell(source, metadata={**({"tags": tags} if tags else {}), **metadata})
    cell.outputs = list(outputs)
    return cell


def stream(text: str):
    return nbformat.v4.new_output("stream", name="stdout", text=text)


def html_output(html: str):
    return nbformat.v4.new_output("display_data", data={"text/html": html, "text/plain": "<obj>"})


HOSTILE = [
    ("script tag", html_output("<script>alert('xss')</script><b>ok</b>")),
    ("onerror handler", html_output('<img src="x" onerror="alert(1)"><b>ok</b>')),
    ("onclick on a table cell", html_output('<table><tr><td onclick="alert(1)">ok</td></tr></table>')),
    ("javascript: link", html_output('<a href="javascript:alert(1)">ok</a>')),
    ("JaVaScRiPt: with spaces", html_output('<a href="  JaVaScRiPt:alert(1)">ok</a>')),
    ("data: link", html_output('<a href="data:text/html,<script>alert(1)</script>">ok</a>')),
    ("svg with onload", html_output('<svg onload="alert(1)"><circle r="1"/></svg><b>ok</b>')),
    ("iframe", html_output('<iframe src="https://evil.example"></iframe><b>ok</b>')),
    ("style attribute and tag", html_output('<style>body{display:none}</style><p style="color:red">ok</p>')),
    ("remote image (a tracking pixel)", html_output('<img src="https://evil.example/p.gif"><b>ok</b>')),
    ("svg image as data URL", html_output('<img src="data:image/svg+xml;base64,PHN2Zz4="><b>ok</b>')),
    ("form posting elsewhere", html_output('<form action="https://evil.example"><input name="x"></form><b>ok</b>')),
    ("id shadowing the page", html_output('<div id="submission-status">ok</div>')),
    (
        "javascript output",
        nbformat.v4.new_output("display_data", data={"application/javascript": "alert(1)", "text/plain": "ok"}),
    ),
]


@pytest.mark.parametrize(("label", "output"), HOSTILE, ids=[label for label, _ in HOSTILE])
def test_no_active_content_survives_rendering(label, output):
    prepared = notebook_prepare(notebook(code("show()", output)))
    html = prepared.html.lower()
    for needle in ("<script", "onerror", "onload", "onclick", "javascript:", "<iframe", "<svg", "<style", "style="):
        assert needle not in html, (label, needle)
    assert "evil.example" not in html
    assert 'id="submission-status"' not in html
    assert "data:text/html" not in html and "data:image/svg" not in html


def test_markdown_cells_are_sanitised_too():
    cell = nbformat.v4.new_markdown_cell(
        "# Title\n\n<script>alert(1)</script>\n\n[x](javascript:alert(1)) <b onmouseover=x()>b</b>"
    )
    html = notebook_prepare(notebook(cell)).html
    assert "<h1>Title</h1>" in html and "<b>b</b>" in html
    assert "<script" not in html and "javascript:" not in html and "onmouseover" not in html


def test_outputs_are_rendered_with_raster_images_as_data_urls():
    png = nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"})
    table = html_output(
        "<table><thead><tr><th>mean radius</th></tr></thead><tbody><tr><td>14.1</td></tr></tbody></table>"
    )
    html = notebook_prepare(notebook(code("df.head()", stream("(455, 31)\n"), png, table))).html
    assert "(455, 31)" in html
    assert 'src="data:image/png;base64,iVBORw0KGgo="' in html
    assert "<th>mean radius</th>" in html and "<td>14.1</td>" in html


def test_hidden_and_grader_cells_are_stripped_from_the_page_and_the_download():
    raw = notebook(
        code("a = 1", stream("visible output\n")),
        code("SECRET_TAGGED = 1", stream("SECRET-TAGGED\n"), tags=["hidden"]),
        code("SECRET_GRADER = 1", stream("SECRET-GRADER\n"), shipwright={"grader": True}),
        code("SECRET_NBGRADER = 1", nbgrader={"hidden": True}),
        code("SECRET_REMOVE = 1", tags=["remove-cell"]),
        code(
            "check(a)\n### BEGIN HIDDEN TESTS\nassert SECRET_REGION\n### END HIDDEN TESTS\n",
            stream("SECRET-REGION-OUTPUT\n"),
        ),
        code("b = 2", stream("last output\n")),
        state={"finished": True},
    )
    prepared = notebook_prepare(raw)
    downloaded = json.loads(prepared.ipynb)
    for text in (prepared.html, prepared.ipynb):
        assert "SECRET" not in text
        assert "visible output" in text and "last output" in text
    assert "shipwright" not in downloaded["metadata"]
    assert [cell["source"].splitlines()[0] for cell in downloaded["cells"]] == ["a = 1", "check(a)", "b = 2"]
    # Numbers stay those of the learner's notebook, as the grader's messages count them.
    assert notebook_view.rendered_cell_numbers(prepared.html) == ["1", "6", "7"]
    assert prepared.finished is True and prepared.flagged_cell is None


@pytest.mark.parametrize(
    ("state", "flagged", "flag"),
    [
        ({"finished": False, "failed_cell": 1}, 2, FLAG_FAILED),
        ({"finished": False, "running_cell": 1}, 2, FLAG_RUNNING),
        ({"finished": False, "stopped_before": 2}, 3, FLAG_NOT_RUN),
        ({"finished": True}, None, ""),
        ({"finished": False, "failed_cell": "1; drop"}, None, ""),
        ({"finished": False, "failed_cell": 99}, None, ""),
    ],
)
def test_the_cell_where_the_notebook_stopped_is_flagged(state, flagged, flag):
    raw = notebook(code("a = 1", stream("ran\n")), code("1 / 0"), code("never()"), state=state)
    prepared = notebook_prepare(raw)
    assert prepared.flagged_cell == flagged and prepared.flag == flag
    assert prepared.finished is (state == {"finished": True})
    if flagged:
        assert f'<section class="nb-cell nb-cell-flagged" id="nb-cell-{flagged}">' in prepared.html
        assert prepared.html.count("nb-cell-flagged") == 1
    else:
        assert "nb-cell-flagged" not in prepared.html


@pytest.mark.parametrize("raw", [b"\xff\xfe", b"not json", b"[]", b'{"cells": 3}', b"{" * 5000])
def test_an_unreadable_notebook_is_a_note_not_a_crash(raw):
    with pytest.raises(NotebookUnreadable, match="the executed notebook could not be read"):
        notebook_prepare(raw)


def test_the_sanitiser_keeps_only_our_cell_anchors():
    html = '<section id="nb-cell-3">a</section><div id="nb-cell-3x">b</div><div id="main">c</div>'
    assert sanitize_notebook_html(html) == '<section id="nb-cell-3">a</section><div>b</div><div>c</div>'


@pytest.mark.parametrize(
    ("output", "flagged", "expected"),
    [
        ("cell 3 (df = load()) raised ValueError: bad", None, 3),
        ("cell 30 raised", 2, 2),  # no such cell on the page: where the notebook stopped
        ("clean() returned the wrong rows", 4, 4),
        ("clean() returned the wrong rows", None, None),
    ],
)
def test_a_failing_check_links_to_the_cell_it_names(output, flagged, expected):
    assert notebook_view.cell_anchor_for(output, cells={1, 2, 3, 4}, flagged=flagged) == expected


# --- lesson links, validated at import ----------------------------------------------------


def _course_copy(tmp_path: Path) -> Path:
    root = tmp_path / "content"
    shutil.copytree(CONTENT / "mlops-foundations", root / "mlops-foundations")
    return root


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("no-such-module/cleaning-nulls-duplicates", "no module with slug 'no-such-module' in this course"),
        ("data-validation/no-such-lesson", "module 'data-validation' has no lesson 'no-such-lesson'"),
        (
            "data-validation/cleaning-nulls-duplicates#no-such-section",
            "lesson data-validation/cleaning-nulls-duplicates has no section #no-such-section (a heading's anchor)",
        ),
    ],
)
def test_a_lesson_link_to_nothing_is_refused_at_import_and_nothing_is_written(db, tmp_path, ref, message):
    from courses.importer import ContentError, content_import
    from labs.models import Lab

    root = _course_copy(tmp_path)
    spec = root / "mlops-foundations/labs/validate-data/lab.yaml"
    text = spec.read_text()
    spec.write_text(
        text.replace(
            "lesson: data-validation/cleaning-nulls-duplicates#missing-values-drop-impute-or-refuse", f"lesson: {ref}"
        )
    )
    with pytest.raises(ContentError) as error:
        content_import(root)
    problems = [str(problem) for problem in error.value.problems]
    assert problems == [f"content/mlops-foundations/labs/validate-data/lab.yaml: checks.2.lesson: {message}"]
    assert not Lab.objects.exists()


# --- the executed notebook comes from a run without hidden data ---------------------------


def _validate_data_spec() -> dict:
    import yaml

    return yaml.safe_load((CONTENT / "mlops-foundations/labs/validate-data/lab.yaml").read_text())


def test_the_sample_notebook_lab_shows_a_run_that_had_only_the_runner_script():
    from labs.lab_spec import LabSpec

    spec = LabSpec.model_validate(_validate_data_spec())
    shown = next(stage for stage in spec.stages if stage.executed_notebook)
    assert not shown.grader_owned and shown.assets == ["grader/run_notebook.py"]
    assert spec.stages.index(shown) == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda stages: stages[1].update(executed_notebook="out.ipynb") or stages.pop(0),
            "stage 'notebook' keeps the executed notebook shown to learners, so it must not be grader-owned",
        ),
        (
            lambda stages: stages.reverse(),
            "stage 'run' keeps the executed notebook, so it must run before grader-owned stage 'notebook'",
        ),
        (
            lambda stages: stages[1].update(executed_notebook="again.ipynb", grader=False),
            "at most one stage may keep an executed_notebook",
        ),
    ],
)
def test_an_executed_notebook_from_a_grader_stage_is_refused(change, message):
    from pydantic import ValidationError

    from labs.lab_spec import LabSpec

    document = _validate_data_spec()
    change(document["stages"])
    with pytest.raises(ValidationError, match=message):
        LabSpec.model_validate(document)


def test_the_sample_course_links_checks_to_lessons_and_escalates_hints(sample_course):
    from labs.models import Lab

    spec = Lab.objects.get(course=sample_course, slug="validate-data").parsed_spec
    check = spec.check("clean() drops rows with nulls")
    assert check.lesson == "data-validation/cleaning-nulls-duplicates#missing-values-drop-impute-or-refuse"
    assert len(check.hints) == 2


# --- hints by attempt, and the timeline -----------------------------------------------------


def _graded(lab, user, statuses: dict[str, str], *, score: float):
    from grading.models import CheckResult, Submission

    submission = Submission.objects.create(
        user=user, lab=lab, source_kind="notebook", status="passed" if score >= 70 else "failed",
        score=score, max_score=100, finished_at=None,
    )  # fmt: skip
    for order, (name, status) in enumerate(statuses.items()):
        CheckResult.objects.create(
            submission=submission, order=order, name=name, status=status,
            score=0 if status == "failed" else 10, max_score=10,
        )  # fmt: skip
    return submission


def test_each_failing_attempt_shows_one_more_hint_and_the_lesson_link(sample_course, learner, client):
    from grading import feedback
    from labs.models import Lab

    lab = Lab.objects.get(course=sample_course, slug="validate-data")
    name = "clean() drops rows with nulls"
    spec = lab.parsed_spec.check(name)
    assert len(spec.hints) == 2
    first, second = ("`df.dropna()` with its defaults", "Check a frame where every row has one null")
    assert spec.hints[0].startswith(first) and spec.hints[1].startswith(second)
    shown, pages = [], []
    client.force_login(learner)
    for _ in range(4):
        submission = _graded(lab, learner, {name: "failed"}, score=10)
        checks = list(submission.check_results.all())
        feedback.annotate_checks(submission, checks, None)
        shown.append(len(checks[0].hints_html))
        assert checks[0].lesson_url == (
            "/courses/mlops-foundations/data-validation/cleaning-nulls-duplicates/#missing-values-drop-impute-or-refuse"
        )
        assert checks[0].lesson_title.startswith("Cleaning")
        pages.append(client.get(submission.get_absolute_url()).content.decode())
    # Attempt 1 already adds the first of `hints` to the general hint; attempt 2 adds
    # the second, more specific one; then they have run out.
    assert shown == [1, 2, 2, 2]
    assert "<code>df.dropna()</code> with its defaults" in pages[0] and second not in pages[0]
    assert "A more specific hint:" in pages[0] and "An even more specific hint" not in pages[0]
    assert second in pages[1] and "An even more specific hint, from attempt 2 on:" in pages[1]


def test_a_passing_check_gets_no_extra_hints(sample_course, learner):
    from grading import feedback
    from labs.models import Lab

    lab = Lab.objects.get(course=sample_course, slug="validate-data")
    name = "clean() drops rows with nulls"
    for _ in range(3):
        submission = _graded(lab, learner, {name: "passed"}, score=100)
    checks = list(submission.check_results.all())
    feedback.annotate_checks(submission, checks, None)
    assert checks[0].hints_html == [] and checks[0].lesson_url


def test_the_timeline_shows_scores_and_flipped_checks(sample_course, learner, client):
    from labs.models import Lab

    lab = Lab.objects.get(course=sample_course, slug="validate-data")
    _graded(lab, learner, {"a": "failed", "b": "passed", "c": "failed"}, score=40)
    _graded(lab, learner, {"a": "passed", "b": "failed", "c": "failed"}, score=50)
    _graded(lab, learner, {"a": "passed", "b": "passed", "c": "passed"}, score=100)
    client.force_login(learner)
    client.post("/courses/mlops-foundations/enroll/")
    page = client.get(lab.get_absolute_url()).content.decode()
    timeline = page[
        page.index('class="attempts-timeline"') : page.index("</ol>", page.index('class="attempts-timeline"'))
    ]
    assert timeline.index("Attempt 1") < timeline.index("Attempt 2") < timeline.index("Attempt 3")
    assert "40 / 100" in timeline and "50 / 100" in timeline and "100 / 100" in timeline
    second = timeline[timeline.index("Attempt 2") : timeline.index("Attempt 3")]
    assert "now passes: a" in second and "now fails: b" in second and ": c" not in second
    third = timeline[timeline.index("Attempt 3") :]
    assert "now passes: b" in third and "now passes: c" in third and "now fails" not in third
