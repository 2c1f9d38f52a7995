"""A learner's bytes are a learner's result: every file or observation learner code can
shape is parsed defensively, and a hostile one gives a failed check that names the file
and the problem, never a platform error, a retry or a hung probe.

Table tests and property tests (hypothesis) need no container; the last test grades a
100,000-bracket metrics file through the real worker code path and Docker engine."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import grading
from grading import judges, learner_files
from grading.judges import FAILED, PASSED, StageOutcome, service
from grading.judges import repository as static
from grading.learner_files import (
    BINARY,
    MAX_INT_DIGITS,
    MAX_JSON_DEPTH,
    NOT_FINITE,
    NOT_JSON,
    NOT_REGULAR,
    NOT_UTF8,
    TOO_DEEP,
    TOO_LARGE,
    TOO_MANY_DIGITS,
    LearnerFileError,
    load_json,
    read_regular_file,
    read_text_file,
)
from labs.lab_spec import LabSpec
from tests.grading.tiny_lab import make_solution, make_tiny_course, write

# Modest example counts: these run in every `make test`, without Docker.
FEW = settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

DEEP = b"[" * 100_000


# ---------------------------------------------------------------------------------------
# The bounded JSON loader


@pytest.mark.parametrize(
    "data, message",
    [
        (DEEP, TOO_DEEP.format(name="metrics.json", limit=MAX_JSON_DEPTH)),
        (b'{"a": ' + b"[" * 201 + b"]" * 201 + b"}", TOO_DEEP.format(name="metrics.json", limit=MAX_JSON_DEPTH)),
        (b'{"accuracy": NaN}', NOT_FINITE.format(name="metrics.json", value="NaN")),
        (b'{"accuracy": Infinity}', NOT_FINITE.format(name="metrics.json", value="Infinity")),
        (b'{"accuracy": -Infinity}', NOT_FINITE.format(name="metrics.json", value="-Infinity")),
        (b'{"accuracy": 1e999}', NOT_FINITE.format(name="metrics.json", value="1e999")),
        (
            b'{"accuracy": ' + b"9" * 100_000 + b"}",
            TOO_MANY_DIGITS.format(name="metrics.json", digits=100_000, limit=MAX_INT_DIGITS),
        ),
        (b'{"accuracy": 0.9, "note": "caf\xe9"}', NOT_UTF8.format(name="metrics.json", offset=30, byte=0xE9)),
        (b"\xff\xfe{\x00}\x00", NOT_UTF8.format(name="metrics.json", offset=0, byte=0xFF)),
        (
            b'{"accuracy": 0.9',
            NOT_JSON.format(name="metrics.json", problem="Expecting ',' delimiter: line 1 column 17 (char 16)"),
        ),
        (b"", NOT_JSON.format(name="metrics.json", problem="Expecting value: line 1 column 1 (char 0)")),
    ],
    ids=[
        "100k-brackets",
        "201-deep",
        "nan",
        "inf",
        "-inf",
        "1e999",
        "100k-digits",
        "latin-1",
        "utf-16",
        "cut",
        "empty",
    ],
)
def test_hostile_json_is_rejected_with_a_message_naming_the_file_and_the_problem(data, message):
    with pytest.raises(LearnerFileError) as caught:
        load_json(data, name="metrics.json")
    assert str(caught.value) == message


def test_ordinary_json_loads_as_before_with_brackets_in_strings_not_counted_as_nesting():
    text = json.dumps({"accuracy": 0.93, "note": "[" * 500, "n": 10**20, "deep": [[[[1]]]]}).encode()
    assert load_json(b"\xef\xbb\xbf" + text, name="m.json") == json.loads(text)
    assert load_json(b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH, name="m.json") is not None


def test_a_file_over_the_size_cap_is_rejected_before_it_is_parsed():
    with pytest.raises(LearnerFileError) as caught:
        load_json(b" " * 101, name="m.json", max_bytes=100)
    assert str(caught.value) == TOO_LARGE.format(name="m.json", size=101, limit=100)


def test_relayed_documents_may_keep_non_finite_numbers_but_not_depth():
    assert load_json(b"[NaN, Infinity]", name="answer", allow_non_finite=True)[1] == float("inf")
    with pytest.raises(LearnerFileError):
        load_json(DEEP, name="answer", allow_non_finite=True)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@FEW
@given(st.binary(max_size=400) | st.text(alphabet='[]{}",:0123456789eE.-+ aNInfity\\u', max_size=400).map(str.encode))
def test_any_bytes_either_load_or_raise_a_learner_file_error(data):
    try:
        load_json(data, name="metrics.json")
    except LearnerFileError as exc:
        assert str(exc).startswith("metrics.json ")


@FEW
@given(json_values)
def test_any_finite_json_document_round_trips(value):
    assert load_json(json.dumps(value).encode(), name="m.json") == value


# ---------------------------------------------------------------------------------------
# Files read back from a stage, and the judges that read them


SPEC = LabSpec.model_validate(
    {
        "slug": "tiny",
        "title": "Tiny",
        "module": "basics",
        "kind": "repo",
        "instructions": "i.md",
        "pass_mark": 60,
        "stages": [{"name": "train", "run": ["python", "train.py"]}],
        "checks": [
            {
                "name": "metrics",
                "kind": "files",
                "stage": "train",
                "paths": ["metrics.json"],
                "json": ["metrics.json"],
                "numbers": {"metrics.json": ["accuracy"]},
                "points": 50,
            },
            {
                "name": "honest",
                "kind": "reported_metric",
                "stage": "train",
                "key": "predictions",
                "labels": "labels.json",
                "file": "metrics.json",
                "field": "accuracy",
                "tolerance": 0.05,
                "points": 50,
            },
        ],
    }
)
LABELS = {"labels.json": [1, 0, 1, 1]}


def judge_metrics(data: bytes | None, *, file_errors: dict | None = None) -> list[judges.CheckOutcome]:
    stage = SPEC.stages[0]
    outcome = StageOutcome(
        spec=stage,
        limits=stage.limits(SPEC.limits),
        status="ran",
        exit_code=0,
        files={"metrics.json": data},
        file_errors=file_errors or {},
        observations={"predictions": [1, 0, 1, 1]},
    )
    return judges.judge_checks(spec=SPEC, outcomes={"train": outcome}, labels=LABELS, reference=None)


@pytest.mark.parametrize(
    "data, file_errors, message",
    [
        (DEEP, None, TOO_DEEP.format(name="metrics.json", limit=MAX_JSON_DEPTH)),
        (b'{"accuracy": NaN}', None, NOT_FINITE.format(name="metrics.json", value="NaN")),
        (b'{"accuracy": 1e999}', None, NOT_FINITE.format(name="metrics.json", value="1e999")),
        (
            b'{"accuracy": ' + b"1" * 5000 + b"}",
            None,
            TOO_MANY_DIGITS.format(name="metrics.json", digits=5000, limit=MAX_INT_DIGITS),
        ),
        (b'{"accuracy": true}', None, judges.NOT_A_NUMBER.format(path="metrics.json", field="accuracy", value="true")),
        (b'{"accuracy": "0.9\xff"}', None, NOT_UTF8.format(name="metrics.json", offset=17, byte=0xFF)),
        (
            None,
            {"metrics.json": TOO_LARGE.format(name="metrics.json", size=2**31, limit=20 * 2**20)},
            TOO_LARGE.format(name="metrics.json", size=2**31, limit=20 * 2**20),
        ),
    ],
    ids=["100k-brackets", "nan", "1e999", "5000-digits", "boolean", "not-utf8", "2gb-sparse"],
)
def test_a_hostile_metrics_file_fails_both_checks_that_read_it_with_the_exact_reason(data, file_errors, message):
    results = judge_metrics(data, file_errors=file_errors)
    assert [(r.name, r.status, r.output) for r in results] == [
        ("metrics", FAILED, message),
        ("honest", FAILED, message),
    ]
    assert judges.verdict(spec=SPEC, checks=results)[0] == FAILED


def test_a_fifo_or_directory_where_the_metrics_file_should_be_fails_both_checks_as_not_found():
    # sandbox.read_file gives None for anything that is not a regular file.
    results = judge_metrics(None)
    assert [(r.name, r.status, r.output) for r in results] == [
        ("metrics", FAILED, "metrics.json was not found after train.py (or is not a regular file)"),
        ("honest", FAILED, judges.FILE_MISSING.format(path="metrics.json", stage="train")),
    ]


def test_an_honest_metrics_file_still_passes():
    results = judge_metrics(b'{"accuracy": 1.0}')
    assert [r.status for r in results] == [PASSED, PASSED]


@FEW
@given(st.binary(max_size=300) | json_values.map(lambda v: json.dumps({"accuracy": v}).encode()))
def test_any_metrics_file_is_judged_passed_or_failed_never_an_error(data):
    assert {r.status for r in judge_metrics(data)} <= {PASSED, FAILED}


def test_a_judge_that_breaks_marks_its_check_error_and_the_submission_error_without_a_retry():
    spec = LabSpec.model_validate(
        {
            **SPEC.model_dump(by_alias=True, exclude={"checks"}),
            "checks": [
                {"name": "same as reference", "kind": "reference", "stage": "train", "keys": ["x"], "points": 10}
            ],
        }
    )
    outcome = StageOutcome(spec=spec.stages[0], limits=spec.limits, status="ran", exit_code=0, observations={"x": 1})
    # No reference observations were computed: a platform fault, inside the judge.
    results = judges.judge_checks(spec=spec, outcomes={"train": outcome}, labels={}, reference=None)
    assert [(r.status, r.output) for r in results] == [(judges.ERROR, judges.JUDGING_FAILED)]
    assert judges.verdict(spec=spec, checks=results) == (judges.ERROR, 0.0, 10.0)


# ---------------------------------------------------------------------------------------
# Audit logs and other probe observations


AUDIT_SPEC = LabSpec.model_validate(
    {
        "slug": "audit",
        "title": "Audit",
        "module": "basics",
        "kind": "repo",
        "instructions": "i.md",
        "pass_mark": 60,
        "stages": [{"name": "serve", "service": {"start": ["python", "api.py"], "requests": "r.json"}}],
        "checks": [
            {
                "name": "one line per request",
                "kind": "audit_log",
                "stage": "serve",
                "file": "audit.log",
                "rule": "one_line_per_request",
                "logged": ["a"],
                "points": 10,
            }
        ],
    }
)


def judge_audit(captured: dict) -> judges.CheckOutcome:
    stage = AUDIT_SPEC.stages[0]
    observations = {
        "ready": {"status": 200},
        "responses": {"a": {"status": 200, "json": {"predictions": [1]}}},
        "captured": captured,
    }
    outcome = StageOutcome(
        spec=stage, limits=stage.limits(AUDIT_SPEC.limits), status="ran", exit_code=0, observations=observations
    )
    [result] = judges.judge_checks(spec=AUDIT_SPEC, outcomes={"serve": outcome}, labels={}, reference=None)
    return result


@pytest.mark.parametrize(
    "line, problem",
    [
        ("[" * 100_000, TOO_DEEP.format(name="line 1 of the audit log audit.log", limit=MAX_JSON_DEPTH)),
        ('{"predictions": [NaN]}', NOT_FINITE.format(name="line 1 of the audit log audit.log", value="NaN")),
        (
            '{"n": ' + "7" * 200 + "}",
            TOO_MANY_DIGITS.format(name="line 1 of the audit log audit.log", digits=200, limit=MAX_INT_DIGITS),
        ),
    ],
    ids=["100k-brackets", "nan", "200-digits"],
)
def test_a_hostile_audit_log_line_fails_the_check_naming_the_line_and_the_problem(line, problem):
    result = judge_audit({"audit.log": line + "\n"})
    assert (result.status, result.output) == (FAILED, service.AUDIT_BAD_LINE.format(problem=problem, start=line[:120]))


def test_an_audit_log_that_is_a_fifo_fails_the_check_with_the_probes_reason():
    problem = NOT_REGULAR.format(name="audit.log", kind="a FIFO (named pipe)")
    result = judge_audit({"audit.log": None, "audit.log:problem": problem})
    assert (result.status, result.output) == (FAILED, service.AUDIT_UNREADABLE.format(path="audit.log", reason=problem))


@FEW
@given(st.text(max_size=300))
def test_any_audit_log_text_is_judged_passed_or_failed_never_an_error(text):
    assert judge_audit({"audit.log": text}).status in (PASSED, FAILED)


# ---------------------------------------------------------------------------------------
# Static checks: workflow YAML, Dockerfile, requirements.txt


STATIC_SPEC = LabSpec.model_validate(
    {
        "slug": "ci",
        "title": "CI",
        "module": "basics",
        "kind": "repo",
        "instructions": "i.md",
        "pass_mark": 60,
        "stages": [{"name": "collect", "collect": {"paths": ["Dockerfile", "requirements.txt"], "scan": True}}],
        "checks": [
            {"name": "valid", "kind": "workflow", "stage": "collect", "rule": "valid", "points": 1},
            {"name": "triggers", "kind": "workflow", "stage": "collect", "rule": "triggers", "points": 1},
            {"name": "checkout", "kind": "workflow", "stage": "collect", "rule": "checkout", "points": 1},
            {"name": "pytest", "kind": "workflow", "stage": "collect", "rule": "pytest", "points": 1},
            {"name": "dockerfile", "kind": "dockerfile", "stage": "collect", "expose": [8000], "points": 1},
            {"name": "requirements", "kind": "requirements", "stage": "collect", "points": 1},
            {"name": "secrets", "kind": "secrets", "stage": "collect", "points": 1},
        ],
    }
)


def judge_static(files: dict, problems: dict | None = None) -> dict[str, judges.CheckOutcome]:
    stage = STATIC_SPEC.stages[0]
    observations = {
        "files": files,
        "problems": problems or {},
        "scanned": {k: v for k, v in files.items() if v is not None},
        "packages": {"pytest": "8"},
    }
    outcome = StageOutcome(
        spec=stage, limits=stage.limits(STATIC_SPEC.limits), status="ran", exit_code=0, observations=observations
    )
    results = judges.judge_checks(spec=STATIC_SPEC, outcomes={"collect": outcome}, labels={}, reference=None)
    return {r.name: r for r in results}


WORKFLOW = ".github/workflows/ci.yml"
ALIAS_BOMB = "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9) if prev else 'x, x, x, x, x, x, x, x, x'}]\n"
    for prev, name in zip(["", *"abcdefgh"], "abcdefghi", strict=True)
)


def test_a_workflow_nested_100000_levels_deep_is_invalid_yaml_not_a_crash():
    results = judge_static({WORKFLOW: "[" * 100_000})
    assert (results["valid"].status, results["valid"].output) == (
        FAILED,
        f"{WORKFLOW}: invalid YAML: {static.YAML_TOO_DEEP}",
    )


def test_a_workflow_with_an_impossible_date_is_invalid_yaml_not_a_crash():
    results = judge_static({WORKFLOW: "on: push\ncreated: 2001-02-30\n"})
    assert (results["valid"].status, results["valid"].output) == (
        FAILED,
        f"{WORKFLOW}: invalid YAML: day is out of range for month",
    )


def test_a_yaml_alias_bomb_under_on_is_judged_without_expanding_it():
    results = judge_static({WORKFLOW: ALIAS_BOMB + "on: [*i, push]\n"})
    assert results["valid"].status == PASSED
    assert results["triggers"].status == PASSED and results["triggers"].output == f"{WORKFLOW} runs on push"


@pytest.mark.parametrize(
    "path, problem",
    [
        ("Dockerfile", NOT_REGULAR.format(name="Dockerfile", kind="a FIFO (named pipe)")),
        ("requirements.txt", NOT_UTF8.format(name="requirements.txt", offset=3, byte=0xFF)),
        (WORKFLOW, TOO_LARGE.format(name=WORKFLOW, size=2**31, limit=256 * 1024)),
    ],
)
def test_a_file_the_collect_probe_could_not_read_fails_its_check_with_the_reason(path, problem):
    results = judge_static({path: None}, {path: problem})
    expected = {
        "Dockerfile": ("dockerfile", problem),
        "requirements.txt": ("requirements", static.UNREADABLE_REQUIREMENTS.format(problem=problem)),
        WORKFLOW: ("valid", f"{WORKFLOW}: {problem}"),
    }[path]
    assert (results[expected[0]].status, results[expected[0]].output) == (FAILED, expected[1])


@FEW
@given(st.text(max_size=400), st.text(max_size=200), st.text(max_size=200))
def test_any_workflow_dockerfile_or_requirements_text_is_judged_never_an_error(workflow, dockerfile, requirements):
    results = judge_static({WORKFLOW: workflow, "Dockerfile": dockerfile, "requirements.txt": requirements})
    assert {r.status for r in results.values()} <= {PASSED, FAILED}


yaml_like = st.lists(
    st.sampled_from(
        [
            "on:",
            " push",
            "jobs:",
            "  t:",
            "    steps:",
            "      - uses: actions/checkout@v4",
            "- run: pytest",
            "&a [x]",
            "*a",
            "[",
            "]",
            "{",
            "}",
            ": ",
            "- ",
            "  ",
            "\n",
            "!!python/object:os.system",
            "'",
            '"',
        ]
    ),
    max_size=40,
).map("".join)


@FEW
@given(yaml_like)
def test_yaml_shaped_noise_is_judged_never_an_error(text):
    results = judge_static({WORKFLOW: text})
    assert {r.status for r in results.values()} <= {PASSED, FAILED}


# ---------------------------------------------------------------------------------------
# Reading files inside the sandbox (the probes use the same helper)


def test_a_fifo_is_refused_at_once_instead_of_blocking_the_reader(tmp_path):
    fifo = tmp_path / "metrics.json"
    os.mkfifo(fifo)
    with pytest.raises(LearnerFileError) as caught:
        read_regular_file(fifo, name="metrics.json", max_bytes=100)
    assert str(caught.value) == NOT_REGULAR.format(name="metrics.json", kind="a FIFO (named pipe)")


@pytest.mark.parametrize(
    "make, kind",
    [
        (lambda p: p.mkdir(), "a directory"),
        (lambda p: p.symlink_to("/etc/passwd"), "a symbolic link"),
    ],
)
def test_a_directory_or_a_link_where_a_file_should_be_is_named_as_such(tmp_path, make, kind):
    target = tmp_path / "junit.xml"
    make(target)
    with pytest.raises(LearnerFileError) as caught:
        read_regular_file(target, name="junit.xml", max_bytes=100)
    assert str(caught.value) == NOT_REGULAR.format(name="junit.xml", kind=kind)


def test_a_2gb_sparse_file_is_refused_by_its_size_without_reading_it(tmp_path):
    sparse = tmp_path / "coverage.json"
    with open(sparse, "wb") as handle:
        handle.truncate(2 * 1024**3)
    with pytest.raises(LearnerFileError) as caught:
        read_regular_file(sparse, name="coverage.json", max_bytes=1024)
    assert str(caught.value) == TOO_LARGE.format(name="coverage.json", size=2 * 1024**3, limit=1024)


def test_text_files_must_be_utf8_without_nul_bytes(tmp_path):
    (tmp_path / "a").write_bytes(b"ok\x00")
    (tmp_path / "b").write_bytes(b"ok\xc3")
    with pytest.raises(LearnerFileError) as binary:
        read_text_file(tmp_path / "a", name="Dockerfile", max_bytes=100)
    with pytest.raises(LearnerFileError) as latin:
        read_text_file(tmp_path / "b", name="Dockerfile", max_bytes=100)
    assert str(binary.value) == BINARY.format(name="Dockerfile")
    assert str(latin.value) == NOT_UTF8.format(name="Dockerfile", offset=2, byte=0xC3)
    with pytest.raises(FileNotFoundError):
        read_text_file(tmp_path / "missing", name="Dockerfile", max_bytes=100)


# ---------------------------------------------------------------------------------------
# The pytest probe's report parsers (run in the lab image; stdlib only, so importable here)

PROBES = Path(grading.__file__).resolve().parent / "probes"


@pytest.fixture(scope="module")
def pytest_probe():
    # Inside the sandbox the probe imports these as top-level modules.
    sys.modules.setdefault("learner_files", learner_files)
    sys.path.insert(0, str(PROBES))
    try:
        spec = importlib.util.spec_from_file_location("pytest_probe", PROBES / "pytest_probe.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(PROBES))


RECORD = {
    "collected": 3,
    "failed": 1,
    "errors": 0,
    "skipped": 1,
    "passed": 1,
    "failures": ["tests/test_a.py::test_bad: assert 1 == 2"],
    "exitstatus": 1,
    "coverage": {"model.py": [8, 10], "./pkg/../train.py": [0, 4]},
}
ONE = (json.dumps(RECORD) + "\n").encode()


def test_the_probe_reads_the_plugins_one_record(pytest_probe):
    record = pytest_probe._record(ONE)
    assert record["collected"] == 3 and record["failures"] == RECORD["failures"]
    assert pytest_probe._measured(record) == {"model.py": (8, 10), "train.py": (0, 4)}


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "CHANNEL_EMPTY"),
        (ONE + ONE, "CHANNEL_TAMPERED"),  # a conftest wrote a record of its own too
        (b'{"coverage": {}}\n' + ONE, "CHANNEL_TAMPERED"),
        (ONE[:-1], "CHANNEL_TAMPERED"),  # cut before its end
        (DEEP + b"\n", "CHANNEL_TAMPERED"),
        (b"[]\n", "CHANNEL_TAMPERED"),
    ],
    ids=["nothing", "two records", "planted first", "cut", "100k-deep", "not an object"],
)
def test_anything_but_one_record_in_the_channel_is_a_recorded_problem(pytest_probe, data, message):
    with pytest.raises(pytest_probe.ReportError) as caught:
        pytest_probe._record(data)
    assert str(caught.value) == getattr(pytest_probe, message)


@pytest.mark.parametrize(
    "coverage, message",
    [
        ({"a.py": 3}, "the coverage record is not what the grader's plugin writes (no line counts for a.py)"),
        ({"a.py": ["all", 3]}, "the coverage record is not what the grader's plugin writes (a count is all)"),
        ({"a.py": [True, 3]}, "the coverage record is not what the grader's plugin writes (a count is True)"),
    ],
)
def test_a_hostile_coverage_record_is_a_recorded_problem_not_a_probe_crash(pytest_probe, coverage, message):
    with pytest.raises(pytest_probe.ReportError) as caught:
        pytest_probe._measured({"coverage": coverage})
    assert str(caught.value) == message


def test_a_fifo_named_like_a_python_file_counts_no_statements_instead_of_blocking(pytest_probe, tmp_path):
    os.mkfifo(tmp_path / "model.py")
    assert pytest_probe._statements(str(tmp_path / "model.py")) == 0


@FEW
@given(st.binary(max_size=500) | json_values.map(lambda v: (json.dumps({"coverage": v}) + "\n").encode()))
def test_any_bytes_in_the_channel_give_counts_or_a_recorded_problem(pytest_probe, data):
    try:
        measured = pytest_probe._measured(pytest_probe._record(data))
    except (pytest_probe.ReportError, LearnerFileError) as exc:
        assert str(exc)
    else:
        assert all(isinstance(a, int) and isinstance(b, int) for a, b in measured.values())


# ---------------------------------------------------------------------------------------
# Through the real runner and Docker engine, on the worker's own code path


@pytest.fixture
def tiny_lab_db(transactional_db, tmp_path):
    from courses.importer import content_import
    from labs.models import Lab

    content_import(make_tiny_course(tmp_path / "content"))
    return Lab.objects.get(slug="tiny")


def grade_once(lab, folder: Path):
    from accounts.models import User
    from grading import services
    from grading.intake import snapshot_from_directory

    user = User.objects.create_user(email="bytes@example.com", password="x" * 12)
    snapshot = snapshot_from_directory(folder, dest_dir=services.snapshot_dir(), limits=services.intake_limits())
    submission = services.submission_create(user=user, lab=lab, snapshot=snapshot, enqueue=False)
    outcome = services.submission_grade(submission.pk)
    submission.refresh_from_db()
    return outcome, submission


@pytest.mark.docker
def test_a_metrics_file_of_100000_brackets_fails_naming_the_file_after_exactly_one_attempt(tiny_lab_db, tmp_path):
    folder = tmp_path / "deep"
    write(folder / "main.py", 'open("out.json", "w").write("[" * 100_000)\n')
    outcome, submission = grade_once(tiny_lab_db, folder)
    assert outcome == submission  # not a services.Retry
    assert (submission.status, submission.attempts, submission.error_message) == ("failed", 1, "")
    tests = {test["name"]: test for test in submission.result["tests"]}
    message = TOO_DEEP.format(name="out.json", limit=MAX_JSON_DEPTH)
    assert tests["out.json exists with a number"]["status"] == "failed"
    assert tests["out.json exists with a number"]["output"] == message
    assert tests["reported accuracy is honest"]["status"] == "failed"
    assert tests["main.py exits 0"]["status"] == "passed"


@pytest.mark.docker
def test_a_fault_while_judging_ends_in_error_at_once_instead_of_re_running_the_stages(tmp_path, transactional_db):
    from courses.importer import content_import
    from grading import services
    from labs.models import Lab

    course = make_tiny_course(tmp_path / "content")
    # A lab author's mistake the importer does not catch: labels that are not JSON.
    (course / "tiny-course/labs/tiny/hidden/labels.json").write_text("[1, 0,")
    content_import(course)
    outcome, submission = grade_once(Lab.objects.get(slug="tiny"), make_solution(tmp_path, "correct"))
    assert outcome == submission  # not a services.Retry: nothing is run again
    assert (submission.status, submission.attempts) == ("error", 1)
    assert submission.error_message == services.JUDGING_FAILED
    assert submission.result["status"] == "error"
