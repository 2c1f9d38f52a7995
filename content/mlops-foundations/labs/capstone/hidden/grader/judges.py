"""Host-side verdicts for the repo labs, from probe observations and static facts.

Every function returns (passed, feedback). Nothing here runs inside a sandbox;
labels and reference observations never enter a container. Check names, points
and required flags live in each lab's hidden/GRADING.md; the criteria are these.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from static_checks import is_root_user

Verdict = tuple[bool, str]
HEALTH_DEADLINE_S = 20.0
MIN_ACCURACY = 0.90
P95_LIMIT_MS = 100.0
PSI_TOLERANCE = 1e-6
TS_SLACK = timedelta(seconds=120)


def _describe(record: dict | None) -> str:
    if not record:
        return "no request was made"
    if record.get("status") is None:
        return f"no answer ({record.get('error', 'connection failed')})"
    body = record.get("json", record.get("text", ""))
    return f"HTTP {record['status']} {json.dumps(body)[:200]}"


# --- serve-model --------------------------------------------------------------------

def health(obs: dict) -> Verdict:
    record = obs.get("health") or {}
    body = record.get("json")
    if record.get("status") == 200 and isinstance(body, dict) and body.get("status") == "ok":
        return True, f"/health answered after {record.get('seconds', 0):.1f} s"
    if "exited" in record:
        return False, f"the server exited with status {record['exited']} before /health answered"
    return False, f"GET /health did not return 200 {{\"status\": \"ok\"}} within 20 s: {_describe(record)}"


def _predictions(record: dict | None, rows: int) -> tuple[list[int] | None, str]:
    if not record or record.get("status") != 200:
        return None, f"POST /predict with {rows} rows: {_describe(record)}"
    body = record.get("json")
    values = body.get("predictions") if isinstance(body, dict) else None
    if not isinstance(values, list):
        return None, "the response has no JSON list 'predictions'"
    if len(values) != rows:
        return None, f"{rows} rows sent, {len(values)} predictions returned"
    if any(isinstance(v, bool) or v not in (0, 1) for v in values):
        return None, "every prediction must be the integer 0 or 1"
    return [int(v) for v in values], ""


def predict_shape(obs: dict, rows: int) -> Verdict:
    if obs.get("health", {}).get("status") != 200:
        return False, "skipped: /health never answered"
    for key, count in (("predict_small", 3), ("predict_batch", rows)):
        values, problem = _predictions(obs.get(key), count)
        if values is None:
            return False, problem
    return True, f"3-row and {rows}-row requests answered with one 0/1 per row"


def accuracy(predictions: list[int] | None, labels: list[int]) -> float | None:
    if predictions is None or len(predictions) != len(labels):
        return None
    return float(np.mean(np.asarray(predictions) == np.asarray(labels)))


def api_accuracy(obs: dict, labels: list[int]) -> Verdict:
    values, problem = _predictions(obs.get("predict_batch"), len(labels))
    if values is None:
        return False, problem
    score = accuracy(values, labels)
    return score >= MIN_ACCURACY, f"holdout accuracy through the API: {score:.3f} (needs >= 0.90)"


def malformed(obs: dict) -> Verdict:
    cases = obs.get("malformed")
    if not cases:
        return False, "skipped: the service did not answer /health"
    bad = [f"{name}: {_describe(record)}" for name, record in cases.items()
           if not (isinstance(record.get("status"), int) and 400 <= record["status"] < 500)]
    if bad:
        return False, "malformed requests must get a 4xx status; got " + "; ".join(bad)
    if obs.get("after_malformed_health", {}).get("status") != 200 or \
            obs.get("after_malformed_predict", {}).get("status") != 200:
        return False, "the service stopped answering after the malformed requests"
    return True, f"{len(cases)} malformed requests got 4xx; the service kept answering"


def latency(obs: dict) -> Verdict:
    values = obs.get("latency_ms")
    if not values:
        return False, "skipped: the service did not answer /health"
    if any(status != 200 for status in obs.get("latency_statuses", [])):
        return False, "some single-row /predict calls did not return 200"
    p95 = float(np.percentile(values, 95))
    return p95 <= P95_LIMIT_MS, f"p95 of {len(values)} single-row calls: {p95:.1f} ms (limit 100 ms)"


def dockerfile(facts: dict) -> Verdict:
    if not facts.get("exists"):
        return False, "no Dockerfile at the repository root"
    problems = []
    if not facts["from"]:
        problems.append("no FROM")
    if not facts["users"]:
        problems.append("no USER: the container would run as root")
    elif is_root_user(facts["users"][-1]):
        problems.append(f"the last USER is {facts['users'][-1]!r}, which is root")
    if "8000" not in facts["exposed"]:
        problems.append("no EXPOSE 8000")
    if not facts["cmd"]:
        problems.append("no CMD or ENTRYPOINT")
    return (not problems), ("; ".join(problems) or "FROM, non-root USER, EXPOSE 8000 and CMD found")


# --- audit-trail --------------------------------------------------------------------

def _audit_lines(obs: dict) -> tuple[list | None, str]:
    if obs.get("health", {}).get("status") != 200:
        return None, "skipped: the service did not answer /health"
    if any(call.get("status") != 200 for call in obs.get("calls", [])):
        bad = next(call for call in obs["calls"] if call.get("status") != 200)
        return None, f"a valid POST /predict failed: {_describe(bad)}"
    if obs.get("log_text") is None:
        return None, f"no audit log at $AUDIT_LOG ({obs.get('log_error', 'missing')})"
    parsed = []
    for number, line in enumerate(obs["log_text"].splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            return None, f"line {number} of the audit log is not JSON"
        if not isinstance(entry, dict):
            return None, f"line {number} of the audit log is not a JSON object"
        parsed.append(entry)
    return parsed, ""


def _predict_lines(entries: list[dict]) -> list[dict]:
    return [entry for entry in entries if "predictions" in entry]


def audit_one_line_per_call(obs: dict) -> Verdict:
    entries, problem = _audit_lines(obs)
    if entries is None:
        return False, problem
    lines, calls = len(_predict_lines(entries)), len(obs["calls"])
    if lines != calls:
        return False, f"{calls} POST /predict calls made, {lines} audit lines with 'predictions' found"
    return True, f"{calls} calls, {lines} JSON lines"


def audit_fields(obs: dict) -> Verdict:
    entries, problem = _audit_lines(obs)
    if entries is None:
        return False, problem
    lines = _predict_lines(entries)
    if len(lines) != len(obs["calls"]):
        return False, "skipped: the number of audit lines does not match the calls"
    start, end = (datetime.fromtimestamp(t, timezone.utc) for t in obs["window"])
    ids = []
    for number, (entry, call) in enumerate(zip(lines, obs["calls"]), 1):
        ts = entry.get("ts")
        try:
            stamp = datetime.fromisoformat(ts)
        except (TypeError, ValueError):
            return False, f"line {number}: ts {ts!r} is not an ISO-8601 timestamp"
        if stamp.utcoffset() != timedelta(0):
            return False, f"line {number}: ts {ts!r} must carry the UTC offset (Z or +00:00)"
        if not start - TS_SLACK <= stamp <= end + TS_SLACK:
            return False, f"line {number}: ts {ts!r} is not the time of the request"
        request_id = entry.get("request_id")
        if not isinstance(request_id, str) or not request_id.strip():
            return False, f"line {number}: request_id must be a non-empty string"
        ids.append(request_id)
        if entry.get("predictions") != call["json"]["predictions"]:
            return False, f"line {number}: predictions differ from the response's"
    if len(set(ids)) != len(ids):
        return False, "request_id values repeat; each call needs its own"
    return True, "ts, request_id and predictions are right on every line"


def audit_sha256(obs: dict) -> Verdict:
    entries, problem = _audit_lines(obs)
    if entries is None:
        return False, problem
    lines = _predict_lines(entries)
    if len(lines) != len(obs["calls"]):
        return False, "skipped: the number of audit lines does not match the calls"
    for number, (entry, call) in enumerate(zip(lines, obs["calls"]), 1):
        value = entry.get("input_sha256")
        if not isinstance(value, str) or value.lower() != call["body_sha256"]:
            return False, (f"line {number}: input_sha256 is not the SHA-256 of the raw request "
                           "body bytes (hash the bytes as received, not re-serialised JSON)")
    return True, "input_sha256 matches the raw body of every call"


def audit_no_email(obs: dict) -> Verdict:
    entries, problem = _audit_lines(obs)
    if entries is None:
        return False, problem
    if not _predict_lines(entries):
        return False, "the audit log has no /predict lines to inspect"
    text = obs["log_text"]
    lowered = text.lower()
    for email in obs["emails"]:
        if email.lower() in lowered:
            return False, "an email address from a request appears in the audit log"
    if '"email"' in lowered:
        return False, "the key \"email\" appears in the audit log"
    return True, "no email key or value in the audit log"


def audit_health_not_logged(obs: dict) -> Verdict:
    entries, problem = _audit_lines(obs)
    if entries is None:
        return False, problem
    extra = len(entries) - len(obs["calls"])
    if extra > 0:
        return False, f"{extra} audit lines more than POST /predict calls (GET /health must not be logged)"
    if extra < 0:
        return False, "skipped: fewer audit lines than POST /predict calls"
    return True, "GET /health calls were not logged"


def no_secrets(findings: list[str]) -> Verdict:
    if findings:
        return False, "secrets found: " + "; ".join(findings[:10])
    return True, "no AWS-style access key ids or private key blocks"


# --- drift-monitor ------------------------------------------------------------------

def same(actual, expected, tolerance: float = PSI_TOLERANCE) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        return isinstance(expected, bool) and isinstance(actual, bool) and actual == expected
    if isinstance(expected, float) or isinstance(expected, int):
        return (isinstance(actual, (int, float)) and math.isfinite(actual)
                and abs(actual - expected) <= tolerance)
    if isinstance(expected, dict):
        return (isinstance(actual, dict) and set(actual) == set(expected)
                and all(same(actual[key], expected[key], tolerance) for key in expected))
    if isinstance(expected, list):
        return (isinstance(actual, list) and len(actual) == len(expected)
                and all(same(a, e, tolerance) for a, e in zip(actual, expected)))
    return actual == expected


def imports(obs: dict) -> Verdict:
    value = obs.get("imports")
    return (value is True), ("monitor.py imports and defines psi and drift_report"
                             if value is True else str(value))


def reference(obs: dict, expected: dict, keys: list[str]) -> Verdict:
    if obs.get("imports") is not True:
        return False, "skipped: monitor.py did not import"
    wrong = [key for key in keys if not same(obs.get(key), expected[key])]
    if wrong:
        shown = {key: obs.get(key) for key in wrong[:2]}
        return False, f"differs from the reference (within 1e-6) for {', '.join(wrong)}: " \
                      f"{json.dumps(shown)[:300]}"
    return True, f"matches the reference within 1e-6 ({len(keys)} observations)"


# --- ci-workflow --------------------------------------------------------------------

def workflow_valid(facts: list[dict]) -> Verdict:
    if not facts:
        return False, "no .github/workflows/*.yml or *.yaml file"
    if not any(entry["valid"] for entry in facts):
        return False, "; ".join(f"{e['path']}: {e.get('error')}" for e in facts)
    return True, ", ".join(e["path"] for e in facts if e["valid"])


def _any_workflow(facts: list[dict], predicate, success: str, failure: str) -> Verdict:
    valid = [entry for entry in facts if entry["valid"]]
    if not valid:
        return False, "skipped: no valid workflow file"
    return (True, success) if any(predicate(entry) for entry in valid) else (False, failure)


def workflow_triggers(facts: list[dict]) -> Verdict:
    return _any_workflow(
        facts, lambda e: bool({"push", "pull_request"} & set(e["triggers"])),
        "triggered on push or pull_request",
        "no workflow is triggered `on` push or pull_request",
    )


def workflow_checkout(facts: list[dict]) -> Verdict:
    return _any_workflow(facts, lambda e: e["checkout"], "uses actions/checkout",
                         "no step `uses: actions/checkout@...`")


def workflow_pytest(facts: list[dict]) -> Verdict:
    return _any_workflow(facts, lambda e: e["pytest"], "a step runs pytest",
                         "no step whose `run` invokes pytest or python -m pytest")


def tests_pass(exit_code: int | None) -> Verdict:
    if exit_code == 0:
        return True, "python -m pytest -q passed"
    if exit_code == 5:
        return False, "pytest collected no tests"
    return False, f"python -m pytest -q exited with status {exit_code}"


def junit_counts(path: Path) -> int | None:
    import xml.etree.ElementTree as ET

    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return None
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    return sum(int(suite.get("tests", 0)) for suite in suites)


def tests_collected(count: int | None) -> Verdict:
    if count is None:
        return False, "pytest did not report any tests"
    return count >= 3, f"{count} tests collected (needs >= 3)"


def coverage(report: dict | None) -> Verdict:
    totals = (report or {}).get("totals")
    if not totals:
        return False, "no coverage report (did pytest run?)"
    statements = totals.get("num_statements", 0)
    if not statements:
        return False, "no Python code outside tests/ to cover"
    percent = 100.0 * totals["covered_lines"] / statements
    return percent >= 60.0, f"coverage of Python files outside tests/: {percent:.1f}% (needs >= 60%)"


# --- train-model (capstone) ---------------------------------------------------------

def train_files(obs: dict) -> Verdict:
    missing = [name for name in ("model.pkl", "metrics.json") if not obs.get(f"{name}_is_file")]
    if missing:
        return False, f"missing after python train.py: {', '.join(missing)}"
    for key in ("model_error", "metrics_error"):
        if obs.get(key):
            return False, obs[key]
    return True, "model.pkl loads and predicts; metrics.json has a number accuracy"


def model_accuracy(obs: dict, labels: list[int]) -> Verdict:
    score = accuracy(obs.get("predictions"), labels)
    if score is None:
        return False, obs.get("model_error") or "no holdout predictions"
    return score >= MIN_ACCURACY, f"holdout accuracy {score:.3f} (needs >= 0.90)"


def honest_metrics(obs: dict, labels: list[int]) -> Verdict:
    score = accuracy(obs.get("predictions"), labels)
    reported = obs.get("reported_accuracy")
    if score is None or reported is None:
        return False, "skipped: needs both holdout predictions and a reported accuracy"
    gap = abs(reported - score)
    return gap <= 0.05, f"reported {reported:.3f}, holdout {score:.3f}: gap {gap:.3f} (limit 0.05)"


def reproducible(first: dict, second: dict) -> Verdict:
    a, b = first.get("predictions"), second.get("predictions")
    if a is None or b is None or len(a) != len(b) or not a:
        return False, "skipped: needs holdout predictions from both runs"
    share = float(np.mean(np.asarray(a) == np.asarray(b)))
    return share >= 0.99, f"the two runs agree on {share:.1%} of holdout rows (needs >= 99%)"
