"""Every check kind's judge, without Docker: the evidence a run would hand it (stage
outcomes, files read back, observations, hidden labels, reference observations) is
built here, and the learner's message is asserted exactly for a pass, a fail and the
edge cases. The Docker-level tests (test_sample_course, lab_check) stay as they are."""

from __future__ import annotations

import typing

import pytest
from pydantic import TypeAdapter

from grading import judges
from grading.judges import FAILED, PASSED, SKIPPED, Evidence, Fail, Skip, StageOutcome, repository, service
from grading.runner import LabAssets, _files_needed, _probe_config, needs_reference, reference_stages
from labs.lab_spec import CheckSpec, LabSpec, Limits, StageSpec

CHECK = TypeAdapter(CheckSpec)
LIMITS = Limits()
LABELS = {"labels.json": [1, 0, 1, 1]}

STAGES = {
    "prepare": StageSpec(name="prepare", run=["python", "prepare.py"]),
    "train": StageSpec(name="train", run=["python", "train.py"]),
    "first": StageSpec(name="first", run=["python", "predict.py"], grader=True),
    "second": StageSpec(name="second", run=["python", "predict.py"], grader=True),
    "serve": StageSpec(name="serve", service={"start": ["python", "api.py"], "requests": "r.json"}),
    "collect": StageSpec(name="collect", collect={"paths": ["Dockerfile"], "scan": True}),
    "tests": StageSpec(name="tests", pytest={}),
    "ci": StageSpec(name="ci", ci={"workflows_from": "collect"}),
    "image": StageSpec(name="image", build={}),
    "run": StageSpec(name="run", service={"image_from": "image", "requests": "r.json"}, needs=["image"]),
}


def ran(stage: str, **fields) -> StageOutcome:
    values = {"status": "ran", "exit_code": 0, "duration_s": 1.0, **fields}
    return StageOutcome(spec=STAGES[stage], limits=LIMITS, **values)


def skipped(stage: str, because: str = "prepare") -> StageOutcome:
    return StageOutcome(spec=STAGES[stage], limits=LIMITS, status="skipped", skipped_because=because)


def judge(check: dict, *outcomes: StageOutcome, reference: dict | None = None) -> tuple[str, str]:
    """(status, message) of one check, as the registry's judge gives it."""
    spec = CHECK.validate_python({"name": "c", "points": 1, **check})
    evidence = Evidence(outcomes={o.spec.name: o for o in outcomes}, labels=LABELS, reference=reference)
    try:
        return PASSED, judges.JUDGES[spec.kind](spec, evidence)
    except Fail as exc:
        return FAILED, str(exc)
    except Skip as exc:
        return SKIPPED, str(exc)


def served(**observations) -> StageOutcome:
    return ran("serve", observations={"ready": {"status": 200, "seconds": 1.23}, **observations})


def collected(files: dict, problems: dict | None = None, packages: dict | None = None) -> StageOutcome:
    observations = {
        "files": files,
        "problems": problems or {},
        "scanned": {path: text for path, text in files.items() if text is not None},
        "packages": packages if packages is not None else {"pytest": "8.3"},
    }
    return ran("collect", observations=observations)


def suite_ran(**observations) -> StageOutcome:
    return ran("tests", observations={"command": "python -m pytest -q", "output_tail": "", **observations})


def ci_ran(steps: list[dict], job_status: str = "success") -> StageOutcome:
    plan = {"workflow": ".github/workflows/ci.yml", "job": "test", "matrix": {}, "skipped_matrix": [], "notes": []}
    return ran("ci", observations={"plan": plan, "steps": steps, "job_status": job_status})


def ci_step(index: int, name: str, **fields) -> dict:
    return {
        "index": index,
        "name": name,
        "status": "success",
        "exit_code": 0,
        "outcome": "success",
        "conclusion": "success",
        "runs_pytest": False,
        "output": "",
        "duration_s": 1.0,
        **fields,
    }


def audit(lines: list[str], **responses) -> StageOutcome:
    calls = {"a": {"status": 200, "json": {"predictions": [1]}}, "b": {"status": 200, "json": {"predictions": [0]}}}
    return served(responses={**calls, **responses}, captured={"audit.log": "".join(f"{line}\n" for line in lines)})


def workflow(text: str) -> StageOutcome:
    return collected({".github/workflows/ci.yml": text})


EXIT = {"kind": "exit_code", "stage": "train"}
FILES = {
    "kind": "files",
    "stage": "train",
    "paths": ["metrics.json", "model.pkl"],
    "json": ["metrics.json"],
    "numbers": {"metrics.json": ["accuracy"]},
}
REPORTED = {
    "kind": "reported_metric",
    "stage": "train",
    "key": "predictions",
    "labels": "labels.json",
    "file": "metrics.json",
    "field": "accuracy",
    "tolerance": 0.05,
}
# The claim read by a grader stage from where the learner recorded it (an MLflow run).
RECORDED = {
    "kind": "reported_metric",
    "stage": "second",
    "key": "predictions",
    "labels": "labels.json",
    "reported": "first:cv_accuracy",
    "tolerance": 0.05,
}
OBSERVATION = {"kind": "observation", "stage": "first", "key": "schema_ok"}
ACCURACY = {"kind": "accuracy", "stage": "first", "key": "predictions", "labels": "labels.json", "min": 0.75}
AGREEMENT = {"kind": "agreement", "a": "first:predictions", "b": "second:predictions", "min": 0.9}
REFERENCE = {"kind": "reference", "stage": "first", "keys": ["a", "b"], "tolerance": 0.01}
REFERENCE_OBSERVED = {"first": {"a": 1.0, "b": [1, 2]}}
READY = {"kind": "http_ready", "stage": "serve", "json": {"status": "ok"}}
HTTP = {
    "kind": "http",
    "stage": "serve",
    "expect": [{"request": "ok", "predictions": "predictions"}, {"request": "bad", "status": "4xx"}],
}
HTTP_OK = {"status": 200, "json": {"predictions": [1, 0]}, "sent_lengths": {"features": 2}}
HTTP_BAD = {"status": 422, "json": {"detail": "features is required"}}
HTTP_ACCURACY = {"kind": "http_accuracy", "stage": "serve", "request": "holdout", "labels": "labels.json", "min": 0.75}
LATENCY = {"kind": "latency", "stage": "serve", "max_ms": 100}
AUDIT = {"kind": "audit_log", "stage": "serve", "file": "audit.log", "logged": ["a", "b"]}
LINE = '{"predictions": [1]}'
DOCKERFILE = {"kind": "dockerfile", "stage": "collect", "expose": [8000]}
REQUIREMENTS = {"kind": "requirements", "stage": "collect"}
SECRETS = {"kind": "secrets", "stage": "collect"}
IMAGE_CONFIG = {"size_bytes": 575_000_000, "user": "app", "healthcheck": None}
HEALTH = {"Test": ["CMD", "python", "health.py"]}


def built(**image) -> StageOutcome:
    return ran("image", observations={"built": True, "image": {**IMAGE_CONFIG, **image}})


def build_failed(error: str, step: dict | None = None) -> StageOutcome:
    observations = {"built": False, "error": error, **({"failed_step": step} if step else {})}
    return ran("image", exit_code=1, observations=observations, output="Step 3/9 : COPY requirments.txt .\n")


def ran_image(**container) -> StageOutcome:
    return ran("run", container=container)


CI = ".github/workflows/ci.yml"
NEEDS = {"kind": "workflow", "stage": "collect", "rule": "needs", "job": "deploy", "needs": ["train"]}
PIPELINE = """on: push
jobs:
  train:
    runs-on: ubuntu-latest
  deploy:
{needs}    runs-on: ubuntu-latest
"""
STEPS = "on: push\njobs:\n  test:\n    steps:\n"


CASES = [
    # kind, case, check, evidence, expected (status, message)
    ("exit_code", "exits 0", EXIT, [ran("train")], (PASSED, "train.py exited 0 in 1.0 s")),
    ("exit_code", "exits 2", EXIT, [ran("train", exit_code=2)], (FAILED, "train.py exited with code 2")),
    (
        "exit_code",
        "time limit",
        EXIT,
        [ran("train", exit_code=137, timed_out=True)],
        (FAILED, "train.py was stopped after 300 s (the time limit)"),
    ),
    (
        "exit_code",
        "memory limit",
        EXIT,
        [ran("train", exit_code=137, oom_killed=True)],
        (FAILED, "killed: the 1 GiB memory limit was reached"),
    ),
    (
        "exit_code",
        "killed by a signal",
        EXIT,
        [ran("train", exit_code=139)],
        (FAILED, "train.py was killed by signal 11"),
    ),
    (
        "exit_code",
        "process limit",
        EXIT,
        [ran("train", exit_code=1, pids_limit_hit=True)],
        (FAILED, "train.py exited with code 1 after hitting the limit of 128 processes and threads"),
    ),
    ("exit_code", "stage skipped", EXIT, [skipped("train")], (SKIPPED, "skipped because prepare failed")),
    (
        "files",
        "all present",
        FILES,
        [ran("train", files={"metrics.json": b'{"accuracy": 0.9}', "model.pkl": b"x"})],
        (PASSED, "found metrics.json, model.pkl"),
    ),
    (
        "files",
        "one missing",
        FILES,
        [ran("train", files={"metrics.json": b'{"accuracy": 0.9}', "model.pkl": None})],
        (FAILED, "model.pkl was not found after train.py (or is not a regular file)"),
    ),
    (
        "files",
        "too large and a string number",
        FILES,
        [
            ran(
                "train",
                files={"metrics.json": b'{"accuracy": "0.9"}', "model.pkl": None},
                file_errors={"model.pkl": "model.pkl is too large"},
            )
        ],
        (FAILED, "metrics.json field 'accuracy' must be a finite number, got \"0.9\"\nmodel.pkl is too large"),
    ),
    (
        "files",
        "field absent",
        FILES,
        [ran("train", files={"metrics.json": b'{"acc": 0.9}', "model.pkl": b"x"})],
        (FAILED, "metrics.json has no field 'accuracy'"),
    ),
    (
        "reported_metric",
        "honest",
        REPORTED,
        [ran("train", files={"metrics.json": b'{"accuracy": 0.98}'}, observations={"predictions": [1, 0, 1, 1]})],
        (PASSED, "metrics.json reports accuracy 0.9800; the holdout gives 0.95–1.00: within 0.05"),
    ),
    (
        "reported_metric",
        "inflated",
        REPORTED,
        [ran("train", files={"metrics.json": b'{"accuracy": 0.5}'}, observations={"predictions": [1, 0, 1, 1]})],
        (FAILED, "metrics.json reports accuracy 0.5000; the holdout gives 0.95–1.00: more than 0.05 apart"),
    ),
    (
        "reported_metric",
        "file missing",
        REPORTED,
        [ran("train", files={"metrics.json": None}, observations={"predictions": [1, 0, 1, 1]})],
        (FAILED, "metrics.json was not found after stage 'train' (or is not a regular file)"),
    ),
    (
        "reported_metric",
        "too few predictions",
        REPORTED,
        [ran("train", files={"metrics.json": b'{"accuracy": 1}'}, observations={"predictions": [1, 0]})],
        (FAILED, "expected 4 predictions (one per holdout row), got 2"),
    ),
    (
        "reported_metric",
        "recorded in a store, honest",
        RECORDED,
        [ran("first", observations={"cv_accuracy": 0.97}), ran("second", observations={"predictions": [1, 0, 1, 1]})],
        (PASSED, "you recorded cv_accuracy 0.9700; the holdout gives 0.95–1.00: within 0.05"),
    ),
    (
        "reported_metric",
        "recorded in a store, inflated",
        RECORDED,
        [ran("first", observations={"cv_accuracy": 0.99}), ran("second", observations={"predictions": [1, 0, 1, 0]})],
        (FAILED, "you recorded cv_accuracy 0.9900; the holdout gives 0.75–0.80: more than 0.05 apart"),
    ),
    (
        "reported_metric",
        "the grader found no recorded value",
        RECORDED,
        [
            ran("first", observations={"cv_accuracy": "no model version has the alias 'champion'"}),
            ran("second", observations={"predictions": [1, 0, 1, 1]}),
        ],
        (FAILED, "no model version has the alias 'champion'"),
    ),
    (
        "reported_metric",
        "recorded value is not a number",
        RECORDED,
        [ran("first", observations={"cv_accuracy": True}), ran("second", observations={"predictions": [1, 0, 1, 1]})],
        (FAILED, "the recorded value field 'cv_accuracy' must be a finite number, got true"),
    ),
    ("observation", "holds", OBSERVATION, [ran("first", observations={"schema_ok": True})], (PASSED, "ok")),
    (
        "observation",
        "a reason",
        OBSERVATION,
        [ran("first", observations={"schema_ok": "column age is missing"})],
        (FAILED, "column age is missing"),
    ),
    (
        "observation",
        "false",
        OBSERVATION,
        [ran("first", observations={"schema_ok": False})],
        (FAILED, "expected schema_ok to hold, got false"),
    ),
    (
        "observation",
        "not recorded",
        OBSERVATION,
        [ran("first", observations={})],
        (FAILED, "the grader recorded no 'schema_ok' in stage 'first': predict.py exited 0 in 1.0 s"),
    ),
    (
        "observation",
        "no observations",
        OBSERVATION,
        [ran("first", exit_code=1, observations_error="no observations were recorded (predict.py exited with code 1)")],
        (
            FAILED,
            "the grader could not examine your work in stage 'first': "
            "no observations were recorded (predict.py exited with code 1)",
        ),
    ),
    (
        "accuracy",
        "above the bar",
        ACCURACY,
        [ran("first", observations={"predictions": [1, 0, 1, 1]})],
        (PASSED, "holdout accuracy in 0.95–1.00 (4 rows); needs ≥ 0.75"),
    ),
    (
        "accuracy",
        "below the bar",
        ACCURACY,
        [ran("first", observations={"predictions": [0, 1, 1, 1]})],
        (FAILED, "holdout accuracy in 0.50–0.55 (4 rows); needs ≥ 0.75"),
    ),
    (
        "accuracy",
        "booleans are not labels",
        ACCURACY,
        [ran("first", observations={"predictions": [1, 0, True, 1]})],
        (FAILED, "the predictions are not a list of integer class labels: [1, 0, true, 1]"),
    ),
    (
        "accuracy",
        "the learner's error",
        ACCURACY,
        [ran("first", observations={"predictions": "predict() raised KeyError: 'age'"})],
        (FAILED, "predict() raised KeyError: 'age'"),
    ),
    (
        "agreement",
        "same answers",
        AGREEMENT,
        [ran("first", observations={"predictions": [1, 0]}), ran("second", observations={"predictions": [1, 0]})],
        (PASSED, "the two runs agree on 100.0% of rows; needs ≥ 90%"),
    ),
    (
        "agreement",
        "different answers",
        AGREEMENT,
        [
            ran("first", observations={"predictions": [1, 0, 1, 1]}),
            ran("second", observations={"predictions": [1, 1, 1, 1]}),
        ],
        (FAILED, "the two runs agree on 75.0% of rows; needs ≥ 90%"),
    ),
    (
        "agreement",
        "no rows",
        AGREEMENT,
        [ran("first", observations={"predictions": []}), ran("second", observations={"predictions": []})],
        (FAILED, "the two runs gave 0 and 0 predictions"),
    ),
    (
        "agreement",
        "second run skipped",
        AGREEMENT,
        [ran("first", observations={"predictions": [1]}), skipped("second", because="first")],
        (SKIPPED, "skipped because first failed"),
    ),
    (
        "reference",
        "within tolerance",
        REFERENCE,
        [ran("first", observations={"a": 1.005, "b": [1, 2]})],
        (PASSED, "2 case(s) match the reference"),
    ),
    (
        "reference",
        "differs",
        REFERENCE,
        [ran("first", observations={"a": 2.0, "b": [1, 2]})],
        (FAILED, "a: your code gave 2.0, which does not match the reference solution (tolerance 0.01)"),
    ),
    (
        "reference",
        "the learner's error instead of a value",
        REFERENCE,
        [ran("first", observations={"a": "division by zero", "b": [1, 2, 3]})],
        (
            FAILED,
            "a: your code failed on this hidden case\nb: your code gave a list of 3 item(s), which does not match "
            "the reference solution (tolerance 0.01)",
        ),
    ),
    (
        "reference",
        "what the learner's code gave on a hidden case is described, never shown",
        REFERENCE,
        [
            ran(
                "first",
                observations={
                    "a": "clean() raised ValueError: could not convert 'SECRET-ROW-7'\n  in clean(), line 3: df.x.astype(float)",
                    "b": {"columns": ["SECRET-COLUMN"], "values": [["SECRET-VALUE"]]},
                },
            )
        ],
        (
            FAILED,
            "a: clean() raised ValueError on this hidden case\n  in clean(), line 3: df.x.astype(float)\n"
            "b: your code gave an object with 2 field(s), which does not match the reference solution "
            "(tolerance 0.01)",
        ),
    ),
    (
        "reference",
        "an exception class named after the hidden case is not named",
        REFERENCE,
        [ran("first", observations={"a": "clean() raised SECRET_ROW_7: x", "b": [1, 2]})],
        (FAILED, "a: clean() raised an exception on this hidden case"),
    ),
    (
        "http_ready",
        "healthy",
        READY,
        [served(ready={"status": 200, "json": {"status": "ok"}, "seconds": 1.23})],
        (PASSED, "GET /health answered 200 after 1.2 s"),
    ),
    (
        "http_ready",
        "wrong body",
        READY,
        [served(ready={"status": 200, "json": {"status": "starting"}})],
        (FAILED, 'GET /health answered HTTP 200 {"status": "starting"}; expected JSON with {"status": "ok"}'),
    ),
    (
        "http_ready",
        "server exited",
        READY,
        [served(ready={"exited": 1})],
        (FAILED, "the server exited with code 1 before answering GET /health"),
    ),
    (
        "http_ready",
        "never answered",
        READY,
        [served(ready={"status": None, "error": "connection refused"})],
        (FAILED, "the server did not answer GET /health with 200 within 20 s (last: connection refused)"),
    ),
    (
        "http",
        "as expected",
        HTTP,
        [served(responses={"ok": HTTP_OK, "bad": HTTP_BAD})],
        (PASSED, "2 request(s) answered as expected"),
    ),
    (
        "http",
        "bad input accepted",
        HTTP,
        [
            served(
                responses={
                    "ok": HTTP_OK,
                    "bad": {
                        "method": "POST",
                        "path": "/predict",
                        "sent": '{"features": []}',
                        "status": 200,
                        "json": {"predictions": []},
                    },
                }
            )
        ],
        (FAILED, 'bad: sent POST /predict {"features": []}\n  expected 4xx, got HTTP 200 {"predictions": []}'),
    ),
    (
        "http",
        "predictions not 0 or 1",
        HTTP,
        [served(responses={"ok": {**HTTP_OK, "json": {"predictions": [1, 2]}}, "bad": HTTP_BAD})],
        (FAILED, "ok: every prediction must be the integer 0 or 1, got [1, 2]"),
    ),
    (
        "http",
        "one prediction for two rows",
        HTTP,
        [served(responses={"ok": {**HTTP_OK, "json": {"predictions": [1]}}, "bad": HTTP_BAD})],
        (FAILED, 'ok: expected {"predictions": [...]} with 2 item(s), got HTTP 200 {"predictions": [1]}'),
    ),
    ("http", "not sent", HTTP, [served(responses={"ok": HTTP_OK})], (FAILED, "request 'bad' was not sent")),
    (
        "http_accuracy",
        "above the bar",
        HTTP_ACCURACY,
        [served(responses={"holdout": {"status": 200, "json": {"predictions": [1, 0, 1, 1]}}})],
        (PASSED, "holdout accuracy through the API in 0.95–1.00; needs ≥ 0.75"),
    ),
    (
        "http_accuracy",
        "below the bar",
        HTTP_ACCURACY,
        [served(responses={"holdout": {"status": 200, "json": {"predictions": [0, 1, 1, 1]}}})],
        (FAILED, "holdout accuracy through the API in 0.50–0.55; needs ≥ 0.75"),
    ),
    (
        "http_accuracy",
        "server error",
        HTTP_ACCURACY,
        [served(responses={"holdout": {"status": 500, "text": "Internal Server Error"}})],
        (FAILED, 'holdout: HTTP 500 "Internal Server Error"'),
    ),
    (
        "latency",
        "fast",
        LATENCY,
        [served(latency_ms=[float(ms) for ms in range(1, 21)], latency_statuses=[200] * 20)],
        (PASSED, "p95 of 20 sequential calls: 19.0 ms (limit 100 ms); median 11.0 ms"),
    ),
    (
        "latency",
        "slow",
        LATENCY,
        [served(latency_ms=[50.0, 150.0], latency_statuses=[200, 200])],
        (FAILED, "p95 of 2 sequential calls: 150.0 ms (limit 100 ms); median 150.0 ms"),
    ),
    (
        "latency",
        "a call failed",
        LATENCY,
        [served(latency_ms=[5.0, 6.0], latency_statuses=[200, 500])],
        (FAILED, "1 of 2 single-row calls did not return 200 (e.g. 500)"),
    ),
    ("latency", "no calls", LATENCY, [served()], (FAILED, "no latency calls were made")),
    (
        "audit_log",
        "one line per request",
        {**AUDIT, "rule": "one_line_per_request"},
        [audit([LINE, LINE])],
        (PASSED, "2 requests, 2 JSON line(s)"),
    ),
    (
        "audit_log",
        "a request not logged",
        {**AUDIT, "rule": "one_line_per_request"},
        [audit([LINE])],
        (
            FAILED,
            "2 POST requests were made, but the audit log has 1 line(s) with 'predictions': "
            "expected exactly one per request",
        ),
    ),
    (
        "audit_log",
        "no log",
        {**AUDIT, "rule": "one_line_per_request"},
        [served(responses={"a": HTTP_OK, "b": HTTP_OK}, captured={"audit.log:error": "no such file"})],
        (FAILED, service.AUDIT_MISSING.format(path="audit.log", reason="no such file")),
    ),
    (
        "audit_log",
        "a logged request failed",
        {**AUDIT, "rule": "one_line_per_request"},
        [audit([LINE, LINE], a={"status": 500, "text": "boom"})],
        (FAILED, 'a: a valid request failed: sent GET ?, got HTTP 500 "boom"'),
    ),
    (
        "audit_log",
        "health checks not logged",
        {**AUDIT, "rule": "not_logged", "not_logged": ["health"]},
        [audit([LINE, LINE, '{"path": "/health"}'])],
        (FAILED, "the audit log has 1 line(s) more than the logged requests: health must not be logged"),
    ),
    (
        "audit_log",
        "an email in the log",
        {**AUDIT, "rule": "forbidden"},
        [
            audit(
                [LINE, '{"predictions": [0], "who": "ann@example.com"}'],
                b={"status": 200, "sent_strings": {"email": "ann@example.com"}},
            )
        ],
        (FAILED, "a value sent as 'email' (ann@example.com) appears in the audit log"),
    ),
    (
        "audit_log",
        "hash of re-serialised JSON",
        {**AUDIT, "rule": "sha256", "logged": ["a"]},
        [audit(['{"predictions": [1], "input_sha256": "abc"}'], a={"status": 200, "body_sha256": "def"})],
        (
            FAILED,
            'line 1: input_sha256 "abc" is not the SHA-256 of the raw request body (def); '
            "hash the bytes as received, not re-serialised JSON",
        ),
    ),
    (
        "audit_log",
        "local time",
        {**AUDIT, "rule": "fields", "logged": ["a"], "fields": ["ts"]},
        [audit(['{"predictions": [1], "ts": "2026-01-01T00:00:00+02:00"}'])],
        (FAILED, "line 1: ts '2026-01-01T00:00:00+02:00' must be in UTC (Z or +00:00)"),
    ),
    (
        "audit_log",
        "fields right",
        {**AUDIT, "rule": "fields", "fields": ["request_id", "predictions"]},
        [audit(['{"predictions": [1], "request_id": "r1"}', '{"predictions": [0], "request_id": "r2"}'])],
        (PASSED, "request_id, predictions are right on all 2 lines"),
    ),
    (
        "dockerfile",
        "non-root with a port and a command",
        DOCKERFILE,
        [collected({"Dockerfile": 'FROM python:3.11\nUSER app\nEXPOSE 8000/tcp\nCMD ["python", "api.py"]\n'})],
        (PASSED, "FROM, a non-root USER, EXPOSE 8000 and CMD found"),
    ),
    (
        "dockerfile",
        "runs as root",
        DOCKERFILE,
        [collected({"Dockerfile": "FROM python:3.11\nCMD python api.py\n"})],
        (FAILED, "no USER after the last FROM: the container would run as root; no EXPOSE 8000"),
    ),
    (
        "dockerfile",
        "root again in the last stage",
        DOCKERFILE,
        [collected({"Dockerfile": "FROM a AS build\nUSER app\nFROM b\nUSER 0\nEXPOSE 8000\nCMD x\n"})],
        (FAILED, "the last USER is '0', which is root"),
    ),
    (
        "dockerfile",
        "absent",
        DOCKERFILE,
        [collected({})],
        (FAILED, "no Dockerfile at the repository root (or it is not a regular file)"),
    ),
    (
        "workflow",
        "valid",
        {"kind": "workflow", "stage": "collect", "rule": "valid"},
        [workflow("on: push\njobs: {}\n")],
        (PASSED, f"{CI} parse as YAML"),
    ),
    (
        "workflow",
        "a list at the top",
        {"kind": "workflow", "stage": "collect", "rule": "valid"},
        [workflow("- a\n- b\n")],
        (FAILED, f"{CI}: not a mapping at the top level"),
    ),
    (
        "workflow",
        "no workflow",
        {"kind": "workflow", "stage": "collect", "rule": "valid"},
        [collected({"README.md": "hi"})],
        (FAILED, "no .github/workflows/*.yml or *.yaml file"),
    ),
    (
        "workflow",
        "runs on push",
        {"kind": "workflow", "stage": "collect", "rule": "triggers"},
        [workflow("on: [push, workflow_dispatch]\n")],
        (PASSED, f"{CI} runs on push, workflow_dispatch"),
    ),
    (
        "workflow",
        "only on a schedule",
        {"kind": "workflow", "stage": "collect", "rule": "triggers"},
        [workflow("on: schedule\n")],
        (FAILED, "no workflow runs `on` push or pull_request (found: schedule)"),
    ),
    (
        "workflow",
        "checks out",
        {"kind": "workflow", "stage": "collect", "rule": "checkout"},
        [workflow(STEPS + "      - uses: actions/checkout@v4\n")],
        (PASSED, f"{CI} uses actions/checkout@v4"),
    ),
    (
        "workflow",
        "no checkout",
        {"kind": "workflow", "stage": "collect", "rule": "checkout"},
        [workflow(STEPS + "      - run: ls\n")],
        (FAILED, "no step `uses: actions/checkout@…`"),
    ),
    (
        "workflow",
        "runs pytest",
        {"kind": "workflow", "stage": "collect", "rule": "pytest"},
        [
            workflow(
                STEPS + "      - run: |\n          pip install -r requirements.txt\n          python -m pytest -q\n"
            )
        ],
        (PASSED, f"{CI} runs: pip install -r requirements.txt"),
    ),
    (
        "workflow",
        "only installs pytest",
        {"kind": "workflow", "stage": "collect", "rule": "pytest"},
        [workflow(STEPS + "      - run: pip install pytest\n")],
        (FAILED, "no step whose `run` invokes pytest or python -m pytest"),
    ),
    (
        "workflow",
        "deploy needs train",
        NEEDS,
        [workflow(PIPELINE.format(needs="    needs: [train]\n"))],
        (PASSED, f"{CI}: job `deploy` runs after train"),
    ),
    (
        "workflow",
        "deploy does not wait",
        NEEDS,
        [workflow(PIPELINE.format(needs=""))],
        (FAILED, f"{CI}: job `deploy` does not wait for `train` (add `needs: train`)"),
    ),
    (
        "workflow",
        "deploy needs a job that is not there",
        NEEDS,
        [
            workflow(
                PIPELINE.format(needs="    needs: trian\n")
                .replace("  train:", "  trian:")
                .replace("needs: trian", "needs: [trian, train]")
            )
        ],
        (FAILED, f"{CI}: job `deploy` needs train, which is not a job there"),
    ),
    (
        "workflow",
        "no deploy job",
        NEEDS,
        [workflow("on: push\njobs:\n  train:\n    runs-on: ubuntu-latest\n")],
        (FAILED, f"{CI} has no job `deploy`"),
    ),
    (
        "requirements",
        "all in the image",
        REQUIREMENTS,
        [collected({"requirements.txt": "pytest>=7  # tests\n-r other.txt\n"})],
        (PASSED, "every package in requirements.txt is in the lab image"),
    ),
    (
        "requirements",
        "not in the image",
        REQUIREMENTS,
        [collected({"requirements.txt": "pytest\ntorch==2.4\n"})],
        (
            FAILED,
            "requirements.txt names torch, which the lab image does not have "
            "(the sandbox has no network, so nothing can be installed)",
        ),
    ),
    (
        "requirements",
        "not a requirement",
        REQUIREMENTS,
        [collected({"requirements.txt": "pytest\n!!!\n"})],
        (FAILED, "requirements.txt has lines that are not requirements: line 2: '!!!'"),
    ),
    (
        "requirements",
        "absent",
        REQUIREMENTS,
        [collected({})],
        (PASSED, "no requirements.txt: nothing to check"),
    ),
    (
        "secrets",
        "clean",
        SECRETS,
        [
            collected(
                {
                    "app.py": "x = 1\n",
                    "model.sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n",
                }
            )
        ],
        (PASSED, "no secrets found in 2 file(s)"),
    ),
    (
        "secrets",
        "an AWS key",
        SECRETS,
        [collected({"config.py": "x = 1\nAWS_KEY = 'AKIAIOSFODNN7EXAMPLE'\n"})],
        (FAILED, "possible secrets committed to the repository:\nconfig.py:2: AWS Access Key"),
    ),
    (
        "secrets",
        "data files are not scanned",
        SECRETS,
        [collected({"data.csv": "id,key\n1,AKIAIOSFODNN7EXAMPLE\n"})],
        (PASSED, "no secrets found in 1 file(s)"),
    ),
    (
        "pytest",
        "suite passes",
        {"kind": "pytest", "stage": "tests", "rule": "passes"},
        [suite_ran(exit_code=0, passed=3)],
        (PASSED, "python -m pytest -q passed (3 tests)"),
    ),
    (
        "pytest",
        "suite fails",
        {"kind": "pytest", "stage": "tests", "rule": "passes"},
        [suite_ran(exit_code=1, failures=["test_api.py::test_predict"], output_tail="1 failed")],
        (FAILED, "python -m pytest -q exited with code 1\ntest_api.py::test_predict\n\n1 failed"),
    ),
    (
        "pytest",
        "no tests",
        {"kind": "pytest", "stage": "tests", "rule": "passes"},
        [suite_ran(exit_code=5)],
        (FAILED, "python -m pytest -q collected no tests"),
    ),
    (
        "pytest",
        "did not finish",
        {"kind": "pytest", "stage": "tests", "rule": "passes"},
        [suite_ran(timed_out=True)],
        (FAILED, "python -m pytest -q did not finish in time"),
    ),
    (
        "pytest",
        "enough tests",
        {"kind": "pytest", "stage": "tests", "rule": "collected", "min_tests": 2},
        [suite_ran(collected=3)],
        (PASSED, "3 test(s) collected; needs ≥ 2"),
    ),
    (
        "pytest",
        "too few tests",
        {"kind": "pytest", "stage": "tests", "rule": "collected", "min_tests": 2},
        [suite_ran(collected=1)],
        (FAILED, "1 test(s) collected; needs ≥ 2"),
    ),
    (
        "pytest",
        "no report",
        {"kind": "pytest", "stage": "tests", "rule": "collected"},
        [suite_ran(junit_error="report.xml is not XML")],
        (FAILED, "pytest reported no tests (report.xml is not XML)\n"),
    ),
    (
        "pytest",
        "covered",
        {"kind": "pytest", "stage": "tests", "rule": "coverage", "min_coverage": 80},
        [suite_ran(coverage_percent=85.0, coverage_files={"app.py": 90.0, "util.py": 75.5})],
        (PASSED, "line coverage of Python files outside tests: 85.0% (needs ≥ 80%): app.py 90%, util.py 75.5%"),
    ),
    (
        "pytest",
        "under-covered",
        {"kind": "pytest", "stage": "tests", "rule": "coverage", "min_coverage": 80},
        [suite_ran(coverage_percent=50.0, coverage_files={"app.py": 50.0})],
        (FAILED, "line coverage of Python files outside tests: 50.0% (needs ≥ 80%): app.py 50%"),
    ),
    (
        "ci",
        "the job passes",
        {"kind": "ci", "stage": "ci"},
        [ci_ran([ci_step(1, "Run actions/checkout@v4"), ci_step(2, "Tests", runs_pytest=True)])],
        (PASSED, "your CI (.github/workflows/ci.yml, job test) passes on this commit: 2 step(s) ran"),
    ),
    (
        "ci",
        "a step fails",
        {"kind": "ci", "stage": "ci"},
        [
            ci_ran(
                [
                    ci_step(
                        1,
                        "Tests",
                        runs_pytest=True,
                        status="failure",
                        exit_code=2,
                        outcome="failure",
                        conclusion="failure",
                        output="ERROR collecting tests/test_x.py",
                    )
                ],
                "failure",
            )
        ],
        (
            FAILED,
            "your CI (.github/workflows/ci.yml, job test) fails on this commit at step 1 “Tests” exited with code 2.\n"
            "If it passes on GitHub, this is the step where the grader's run differs (Python 3.11 and the lab's "
            "packages, no network).\n\nERROR collecting tests/test_x.py",
        ),
    ),
    (
        "ci",
        "a job the lab names need not run pytest",
        {"kind": "ci", "stage": "ci"},
        [
            ran(
                "ci",
                observations={
                    "plan": {
                        "workflow": CI,
                        "job": "train",
                        "named": True,
                        "matrix": {},
                        "skipped_matrix": [],
                        "notes": [],
                    },
                    "steps": [ci_step(1, "Train")],
                    "job_status": "success",
                },
            )
        ],
        (PASSED, f"your CI ({CI}, job train) passes on this commit: 1 step(s) ran"),
    ),
    (
        "ci",
        "nothing to run",
        {"kind": "ci", "stage": "ci"},
        [ran("ci", observations={"plan_error": "no job in .github/workflows/ci.yml has a step that runs pytest"})],
        (FAILED, "no job in .github/workflows/ci.yml has a step that runs pytest"),
    ),
    (
        "pytest",
        "no coverage report",
        {"kind": "pytest", "stage": "tests", "rule": "coverage"},
        [suite_ran()],
        (FAILED, "no coverage report (did pytest run?)"),
    ),
    (
        "image",
        "builds",
        {"kind": "image", "stage": "image", "rule": "builds"},
        [built()],
        (PASSED, "built in 1.0 s (575 MB)"),
    ),
    (
        "image",
        "a failed build names the instruction",
        {"kind": "image", "stage": "image", "rule": "builds"},
        [
            build_failed(
                "COPY failed: file not found in build context", {"step": 3, "line": 4, "text": "COPY requirments.txt ."}
            )
        ],
        (
            FAILED,
            "step 3 (line 4) `COPY requirments.txt .` failed: COPY failed: file not found in build context"
            "\n\nStep 3/9 : COPY requirments.txt .",
        ),
    ),
    (
        "image",
        "no image, no size",
        {"kind": "image", "stage": "image", "rule": "size", "max_mb": 100},
        [build_failed("FROM ubuntu is not allowed")],
        (FAILED, "there is no image to check: FROM ubuntu is not allowed"),
    ),
    (
        "image",
        "over the size budget",
        {"kind": "image", "stage": "image", "rule": "size", "max_mb": 500},
        [built()],
        (FAILED, "the image is 575 MB, more than the 500 MB budget"),
    ),
    (
        "image",
        "declares and runs as non-root",
        {"kind": "image", "stage": "image", "rule": "non_root", "running": "run"},
        [built(), ran_image(uids=[10001])],
        (PASSED, "declares USER app; its processes ran as uid 10001"),
    ),
    (
        "image",
        "no USER",
        {"kind": "image", "stage": "image", "rule": "non_root", "running": "run"},
        [built(user=""), ran_image(uids=[0])],
        (
            FAILED,
            "the image runs as root: no USER is declared. Add a USER with a non-root user after the last FROM",
        ),
    ),
    (
        "image",
        "USER 0:0",
        {"kind": "image", "stage": "image", "rule": "non_root", "running": "run"},
        [built(user="0:0"), ran_image(uids=[0])],
        (FAILED, "the image runs as root: USER is '0:0'. Add a USER with a non-root user after the last FROM"),
    ),
    (
        "image",
        "a process ran as root anyway",
        {"kind": "image", "stage": "image", "rule": "non_root", "running": "run"},
        [built(), ran_image(uids=[0, 10001])],
        (FAILED, "processes of the running container had uid 0 (root): 0, 10001"),
    ),
    (
        "image",
        "a token in the history",
        {"kind": "image", "stage": "image", "rule": "secrets"},
        [
            ran(
                "image",
                observations={
                    "built": True,
                    "image": IMAGE_CONFIG,
                    "scanned": {"(image history)": "ARG T=ghp_9fK2LmQ7xW4vB8nR1tY6uP3sA0dZ5cE2hJ7k\n"},
                },
            )
        ],
        (
            FAILED,
            "possible secrets in the image (its history or the files its layers add; a file deleted by a later "
            "layer is still in the image):\n(image history):1: GitHub Token",
        ),
    ),
    (
        "image",
        "healthcheck healthy",
        {"kind": "image", "stage": "image", "rule": "healthcheck", "running": "run"},
        [built(healthcheck=HEALTH), ran_image(health={"status": "healthy"})],
        (PASSED, "the HEALTHCHECK (CMD python health.py) reported healthy"),
    ),
    (
        "image",
        "no healthcheck declared",
        {"kind": "image", "stage": "image", "rule": "healthcheck", "running": "run"},
        [built(), ran_image()],
        (PASSED, "the Dockerfile declares no HEALTHCHECK (none to check)"),
    ),
    (
        "image",
        "healthcheck failing",
        {"kind": "image", "stage": "image", "rule": "healthcheck", "running": "run"},
        [
            built(healthcheck=HEALTH),
            ran_image(health={"status": "unhealthy", "last": [{"exit_code": 1, "output": "refused"}]}),
        ],
        (FAILED, "the HEALTHCHECK (CMD python health.py) did not report healthy: status unhealthy\n  exit 1: refused"),
    ),
]


@pytest.mark.parametrize(
    "check, outcomes, expected",
    [case[2:] for case in CASES],
    ids=[f"{case[0]}: {case[1]}" for case in CASES],
)
def test_each_judge_gives_the_learner_this_exact_message(check, outcomes, expected):
    reference = REFERENCE_OBSERVED if check["kind"] == "reference" else None
    assert judge(check, *outcomes, reference=reference) == expected


def every_check_kind() -> set[str]:
    union = typing.get_args(CheckSpec)[0]
    return {typing.get_args(cls.model_fields["kind"].annotation)[0] for cls in typing.get_args(union)}


def test_every_check_kind_has_one_judge_and_every_judge_a_check_kind():
    assert set(judges.JUDGES) == every_check_kind()


def test_every_check_kind_is_judged_here_passing_and_failing():
    assert {kind for kind, *_, (status, _) in CASES if status == PASSED} == every_check_kind()
    assert {kind for kind, *_, (status, _) in CASES if status == FAILED} == every_check_kind()


def test_a_reference_check_without_reference_observations_is_a_platform_fault_not_a_learner_fail():
    with pytest.raises(RuntimeError, match="no reference observations for stage 'first'"):
        judge(REFERENCE, ran("first", observations={"a": 1.0, "b": [1, 2]}), reference=None)


def test_a_workflow_the_collect_probe_could_not_read_is_invalid_with_the_probes_reason():
    evidence = collected({CI: None}, problems={CI: "ci.yml is a FIFO (named pipe)"})
    assert judge({"kind": "workflow", "stage": "collect", "rule": "valid"}, evidence) == (
        FAILED,
        f"{CI}: ci.yml is a FIFO (named pipe)",
    )
    assert judge(REQUIREMENTS, collected({"requirements.txt": None}, problems={"requirements.txt": "too big"})) == (
        FAILED,
        repository.UNREADABLE_REQUIREMENTS.format(problem="too big"),
    )


LAB = {
    "slug": "lab",
    "title": "Lab",
    "module": "basics",
    "kind": "repo",
    "instructions": "i.md",
    "pass_mark": 60,
    "stages": [
        {"name": "train", "run": ["python", "train.py"]},
        {"name": "serve", "service": {"start": ["python", "api.py"], "requests": "r.json"}},
    ],
}


def test_the_runner_reads_back_the_files_that_the_check_kinds_declare_after_their_stage():
    spec = LabSpec.model_validate(
        {**LAB, "checks": [{"name": "f", "points": 1, **FILES}, {"name": "r", "points": 1, **REPORTED}]}
    )
    assert _files_needed(spec) == {"train": {"metrics.json", "model.pkl"}}
    assert not needs_reference(spec)
    spec = LabSpec.model_validate(
        {**LAB, "checks": [{"name": "r", "points": 1, "kind": "reference", "stage": "train", "keys": ["a"]}]}
    )
    assert needs_reference(spec)


def test_the_reference_run_is_only_the_stages_reference_checks_read_and_what_they_need():
    spec = LabSpec.model_validate(
        {
            **LAB,
            "stages": [
                {"name": "repository", "collect": {"paths": ["x"]}},
                {"name": "ci", "ci": {"workflows_from": "repository"}, "needs": ["repository"]},
                {"name": "train", "run": ["python", "train.py"]},
                {"name": "probe", "run": ["python", "p.py"], "needs": ["train"]},
                {"name": "monitor", "run": ["python", "m.py"]},
            ],
            "checks": [
                {"name": "a", "points": 1, "kind": "reference", "stage": "probe", "keys": ["a"]},
                {"name": "b", "points": 1, "kind": "reference", "stage": "monitor", "keys": ["b"]},
                {"name": "c", "points": 1, "kind": "ci", "stage": "ci"},
            ],
        }
    )
    assert [stage.name for stage in reference_stages(spec)] == ["train", "probe", "monitor"]


def test_a_reported_metric_reads_its_claim_from_a_file_or_from_a_stage_never_both():
    check = CHECK.validate_python({"name": "r", "points": 1, **RECORDED})
    assert check.stages_read() == ["second", "first"]
    assert check.files_read_back() == {}
    without_claim = {k: v for k, v in RECORDED.items() if k != "reported"}
    for fields in (
        without_claim,
        {**without_claim, "file": "metrics.json"},
        {**RECORDED, "file": "metrics.json", "field": "accuracy"},
    ):
        with pytest.raises(ValueError, match="needs either file and field, or reported"):
            CHECK.validate_python({"name": "r", "points": 1, **fields})


def test_a_service_stage_runs_a_driver_from_its_own_assets_with_or_without_requests(tmp_path):
    serve = {"name": "serve", "service": {"start": ["python", "api.py"], "driver": "grader/drive.py"}}
    spec = LabSpec.model_validate({**LAB, "stages": [{**serve, "assets": ["grader/drive.py"]}]})
    assets = LabAssets(root=tmp_path, starter=tmp_path / "starter", hidden=tmp_path / "hidden")
    config = _probe_config(spec.stages[0], assets)
    assert config["driver"] == "/grader/grader/drive.py"
    assert config["requests"] == [] and config["latency"] is None
    with pytest.raises(ValueError, match=r"service.driver 'grader/drive.py' must also be listed in assets"):
        LabSpec.model_validate({**LAB, "stages": [serve]})
    with pytest.raises(ValueError, match="a service stage needs requests, a driver, or both"):
        LabSpec.model_validate({**LAB, "stages": [{"name": "serve", "service": {"start": ["python", "api.py"]}}]})


def test_a_check_kind_on_a_stage_without_its_probe_is_refused_naming_the_probe():
    with pytest.raises(ValueError, match=r"check 'ready' \(http_ready\) needs a stage with `service:`"):
        LabSpec.model_validate(
            {**LAB, "checks": [{"name": "ready", "points": 1, "kind": "http_ready", "stage": "train"}]}
        )
    with pytest.raises(ValueError, match="check 'same' names unknown stage 'nowhere'"):
        LabSpec.model_validate(
            {**LAB, "checks": [{"name": "same", "points": 1, **AGREEMENT, "a": "train:p", "b": "nowhere:p"}]}
        )


@pytest.mark.parametrize(
    "value, band",
    [
        (0.0, "0.00–0.05"),
        (0.5, "0.50–0.55"),
        (0.8999, "0.85–0.90"),
        (0.9, "0.90–0.95"),
        (0.9473, "0.90–0.95"),
        (0.95, "0.95–1.00"),
        (1.0, "0.95–1.00"),
    ],
)
def test_holdout_accuracy_is_shown_as_a_band(value, band):
    assert judges.base.accuracy_band(value) == band


def test_feedback_never_shows_the_exact_holdout_accuracy():
    # 3 of 4 right is 0.75: neither the figure nor the count of right rows may appear,
    # or a learner flipping one prediction per submission would read off the labels.
    predicted = {"predictions": [1, 0, 1, 0]}
    outcomes = [ran("train", files={"metrics.json": b'{"accuracy": 0.7}'}, observations=predicted)]
    outcomes.append(ran("first", observations=predicted))
    for check in (ACCURACY, REPORTED):
        _, message = judge(check, *outcomes)
        assert "0.75–0.80" in message and "0.7500" not in message and "3 of 4" not in message


def test_a_hidden_case_result_that_differs_names_the_parts_not_the_values():
    from grading.judges.observations import _hidden_case_mismatch

    expected = {"columns": ["a", "b"], "values": [[1, 2]], "index": [0]}
    got = {"columns": ["a", "b"], "values": [["SECRET", 2]], "index": [7]}
    assert _hidden_case_mismatch(expected, got) == "your code's result differs in: values, index"
    assert "SECRET" not in _hidden_case_mismatch(expected, {"SECRET": 1})
