"""Judging: turn what the sandbox observed into per-check verdicts.

Pure functions, no I/O beyond what they are handed. Every verdict is computed here,
on the grader's side, from three kinds of evidence: how each stage ended (reported
by the engine), files read back from the workspace (without following links), and
the observations a grader-owned stage wrote. Expectations (hidden labels, the
reference solution's observations) never enter a sandbox, so nothing learner code
prints or writes can award itself points: to fake an observation it would have to
produce the right answer.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from typing import Any

from labs.spec import (
    AccuracyCheck,
    AgreementCheck,
    AuditLogCheck,
    ExitCodeCheck,
    FilesCheck,
    HttpAccuracyCheck,
    HttpCheck,
    HttpReadyCheck,
    LabSpec,
    LatencyCheck,
    Limits,
    ObservationCheck,
    ReferenceCheck,
    ReportedMetricCheck,
    StageSpec,
)

from .learner_files import LearnerFileError, load_json

log = logging.getLogger(__name__)

PASSED, FAILED, ERROR, SKIPPED = "passed", "failed", "error", "skipped"
MAX_FEEDBACK_CHARS = 4000
AUDIT_TS_SLACK_S = 120

FILE_MISSING = "{path} was not found after stage {stage!r} (or is not a regular file)"
NOT_A_NUMBER = "{path} field {field!r} must be a finite number, got {value}"
AUDIT_MISSING = "no audit log at {path} after the requests ({reason})"
AUDIT_UNREADABLE = "the audit log {path} could not be read: {reason}"
AUDIT_BAD_LINE = "{problem} (the line begins {start!r})"
# A fault of the platform while judging one check: deterministic (the same evidence
# would fail the same way again), so it is reported on that check, the submission ends
# in `error` (not the learner's fail) and nothing is run again.
JUDGING_FAILED = (
    "the grader itself failed while judging this check (a platform fault, logged for the staff); "
    "this is not a verdict on your work"
)


@dataclass
class StageOutcome:
    """How one stage ended, plus what was read back right after it."""

    spec: StageSpec
    limits: Limits
    status: str  # "ran" | "skipped"
    skipped_because: str = ""
    exit_code: int | None = None
    timed_out: bool = False
    oom_killed: bool = False
    pids_limit_hit: bool = False
    duration_s: float = 0.0
    cpu_s: float | None = None
    peak_memory_mb: float | None = None
    output: str = ""
    output_truncated_bytes: int = 0
    # Workspace files read after the stage: path -> bytes, or None when missing,
    # not a regular file, or too large.
    files: dict[str, bytes | None] = field(default_factory=dict)
    # Why a file the checks need could not be read back (too large), by path.
    file_errors: dict[str, str] = field(default_factory=dict)
    observations: dict[str, Any] | None = None
    observations_error: str = ""
    # Set when the stage could not start because of the submission itself (for
    # example, it does not fit in the workspace): the learner's failure, in words.
    blocked: str = ""

    @property
    def succeeded(self) -> bool:
        return self.status == "ran" and self.exit_code == 0 and not self.timed_out and not self.oom_killed

    @property
    def label(self) -> str:
        if self.spec.service is not None:
            return f"the server ({' '.join(self.spec.service.start)})"
        if self.spec.pytest is not None:
            return "your test suite"
        if self.spec.collect is not None:
            return "reading your repository"
        return command_label(self.spec.run)

    def summary(self) -> str:
        """One sentence a learner understands about how the stage ended."""
        if self.blocked:
            return self.blocked
        if self.status == "skipped":
            return f"skipped because {self.skipped_because} failed"
        if self.timed_out:
            return f"{self.label} was stopped after {_seconds(self.limits.time_s)} s (the time limit)"
        if self.oom_killed:
            return f"killed: the {_memory(self.limits.memory_mb)} memory limit was reached"
        if self.pids_limit_hit and self.exit_code != 0:
            return (
                f"{self.label} exited with code {self.exit_code} after hitting the limit of "
                f"{self.limits.pids} processes and threads"
            )
        if self.exit_code == 0:
            return f"{self.label} exited 0 in {self.duration_s:.1f} s"
        if self.exit_code is not None and self.exit_code < 0 or (self.exit_code or 0) > 128:
            return f"{self.label} was killed by signal {abs(self.exit_code or 0) % 128}"
        return f"{self.label} exited with code {self.exit_code}"


@dataclass(frozen=True)
class CheckOutcome:
    name: str
    status: str
    score: float
    max_score: float
    required: bool
    output: str
    hint: str = ""


def command_label(argv: list[str]) -> str:
    """`python train.py` -> `train.py`; other commands as typed."""
    if len(argv) >= 2 and argv[0].startswith("python") and argv[1].endswith(".py"):
        return argv[1].rsplit("/", 1)[-1]
    return " ".join(argv)


def _seconds(value: float) -> str:
    return f"{value:g}"


def _memory(mb: int) -> str:
    return f"{mb // 1024:g} GiB" if mb % 1024 == 0 else f"{mb} MiB"


def _clip(text: str, limit: int = MAX_FEEDBACK_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 20] + "\n… (feedback cut)"


def _show(value: Any, limit: int = 300) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Fail(Exception):
    """A check failed, with feedback for the learner."""


class _Skip(Exception):
    """A check could not run because a stage it depends on did not run."""


def _stage(outcomes: dict[str, StageOutcome], name: str) -> StageOutcome:
    outcome = outcomes[name]
    if outcome.status == "skipped":
        raise _Skip(f"skipped because {outcome.skipped_because} failed")
    return outcome


def _observation(outcomes: dict[str, StageOutcome], stage_name: str, key: str) -> Any:
    outcome = _stage(outcomes, stage_name)
    if outcome.observations is None:
        reason = outcome.observations_error or outcome.summary()
        raise _Fail(f"the grader could not examine your work in stage {stage_name!r}: {reason}")
    if key not in outcome.observations:
        raise _Fail(f"the grader recorded no {key!r} in stage {stage_name!r}: {outcome.summary()}")
    return outcome.observations[key]


def _predictions(value: Any, what: str) -> list[int]:
    if isinstance(value, str):
        raise _Fail(value)
    if not isinstance(value, list) or not all(isinstance(item, int) and not isinstance(item, bool) for item in value):
        raise _Fail(f"{what} are not a list of integer class labels: {_show(value)}")
    return value


def _accuracy(predictions: list[int], labels: list[int]) -> float:
    if len(predictions) != len(labels):
        raise _Fail(f"expected {len(labels)} predictions (one per holdout row), got {len(predictions)}")
    return sum(1 for p, y in zip(predictions, labels, strict=True) if p == y) / len(labels)


def _missing_file(outcome: StageOutcome, path: str) -> str:
    return outcome.file_errors.get(path) or FILE_MISSING.format(path=path, stage=outcome.spec.name)


def _json_file(outcome: StageOutcome, path: str) -> Any:
    data = outcome.files.get(path)
    if data is None:
        raise _Fail(_missing_file(outcome, path))
    try:
        return load_json(data, name=path)
    except LearnerFileError as exc:
        raise _Fail(str(exc)) from None


def _number(document: Any, path: str, name: str) -> float:
    if not isinstance(document, dict) or name not in document:
        raise _Fail(f"{path} has no field {name!r}")
    value = document[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Fail(NOT_A_NUMBER.format(path=path, field=name, value=_show(value)))
    try:
        number = float(value)  # an int past float's range overflows
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise _Fail(NOT_A_NUMBER.format(path=path, field=name, value=_show(value)))
    return number


def _close(expected: Any, got: Any, tolerance: float) -> bool:
    if isinstance(expected, bool) or isinstance(got, bool):
        return expected is got or expected == got and type(expected) is type(got)
    if isinstance(expected, int | float) and isinstance(got, int | float):
        if isinstance(expected, float) and math.isnan(expected):
            return isinstance(got, float) and math.isnan(got)
        return abs(float(expected) - float(got)) <= tolerance
    if isinstance(expected, list) and isinstance(got, list):
        return len(expected) == len(got) and all(_close(e, g, tolerance) for e, g in zip(expected, got, strict=True))
    if isinstance(expected, dict) and isinstance(got, dict):
        return expected.keys() == got.keys() and all(_close(expected[k], got[k], tolerance) for k in expected)
    return expected == got


def _judge(
    check: Any,
    outcomes: dict[str, StageOutcome],
    labels: dict[str, list[int]],
    reference: dict[str, dict[str, Any]] | None,
) -> str:
    """Returns feedback for a passing check; raises _Fail or _Skip otherwise."""
    if isinstance(check, ExitCodeCheck):
        outcome = _stage(outcomes, check.stage)
        if not outcome.succeeded:
            raise _Fail(outcome.summary())
        return outcome.summary()

    if isinstance(check, FilesCheck):
        outcome = _stage(outcomes, check.stage)
        problems = []
        for path in check.paths:
            if outcome.files.get(path) is None:
                problems.append(
                    outcome.file_errors.get(path)
                    or f"{path} was not found after {outcome.label} (or is not a regular file)"
                )
                continue
            if path in check.json_:
                try:
                    document = _json_file(outcome, path)
                    for name in check.numbers.get(path, []):
                        _number(document, path, name)
                except _Fail as exc:
                    problems.append(str(exc))
        if problems:
            raise _Fail("\n".join(problems))
        return f"found {', '.join(check.paths)}"

    if isinstance(check, ObservationCheck):
        value = _observation(outcomes, check.stage, check.key)
        if value is True:
            return "ok"
        if isinstance(value, str) and value:
            raise _Fail(value)
        raise _Fail(f"expected {check.key} to hold, got {_show(value)}")

    if isinstance(check, AccuracyCheck):
        predictions = _predictions(_observation(outcomes, check.stage, check.key), "the predictions")
        accuracy = _accuracy(predictions, labels[check.labels])
        correct = round(accuracy * len(predictions))
        feedback = f"holdout accuracy {accuracy:.4f} ({correct} of {len(predictions)} rows); needs ≥ {check.min:g}"
        if accuracy < check.min:
            raise _Fail(feedback)
        return feedback

    if isinstance(check, ReportedMetricCheck):
        outcome = _stage(outcomes, check.stage)
        predictions = _predictions(_observation(outcomes, check.stage, check.key), "the predictions")
        accuracy = _accuracy(predictions, labels[check.labels])
        reported = _number(_json_file(outcome, check.file), check.file, check.field)
        gap = abs(reported - accuracy)
        feedback = (
            f"{check.file} reports {check.field} {reported:.4f}; the holdout gives {accuracy:.4f} "
            f"(difference {gap:.4f}, allowed {check.tolerance:g})"
        )
        if gap > check.tolerance:
            raise _Fail(feedback)
        return feedback

    if isinstance(check, AgreementCheck):
        stage_a, key_a = check.a.split(":", 1)
        stage_b, key_b = check.b.split(":", 1)
        first = _predictions(_observation(outcomes, stage_a, key_a), f"{stage_a} predictions")
        second = _predictions(_observation(outcomes, stage_b, key_b), f"{stage_b} predictions")
        if len(first) != len(second) or not first:
            raise _Fail(f"the two runs gave {len(first)} and {len(second)} predictions")
        same = sum(1 for a, b in zip(first, second, strict=True) if a == b) / len(first)
        feedback = f"the two runs agree on {same:.1%} of rows; needs ≥ {check.min:.0%}"
        if same < check.min:
            raise _Fail(feedback)
        return feedback

    if isinstance(check, ReferenceCheck):
        if reference is None or check.stage not in reference:
            raise RuntimeError(f"no reference observations for stage {check.stage!r}")
        expected_all = reference[check.stage]
        mismatches = []
        for key in check.keys:
            got = _observation(outcomes, check.stage, key)
            expected = expected_all.get(key)
            if not _close(expected, got, check.tolerance):
                # The expected value is a result on hidden data: showing it would let a
                # learner hard-code it. Show what their code gave.
                if isinstance(got, str) and not isinstance(expected, str):
                    mismatches.append(f"{key}: {got}")
                else:
                    mismatches.append(
                        f"{key}: your code gave {_show(got)}, which does not match the reference solution"
                        + (f" (tolerance {check.tolerance:g})" if check.tolerance else "")
                    )
        if mismatches:
            raise _Fail("\n".join(mismatches))
        return f"{len(check.keys)} case(s) match the reference"

    from . import static

    judge = _JUDGES.get(type(check)) or static.JUDGES.get(type(check))
    if judge is None:
        raise RuntimeError(f"unknown check kind {type(check).__name__}")
    return judge(check, outcomes, labels)


# --- the service probe's observations ------------------------------------------


def _service(outcomes: dict[str, StageOutcome], stage: str) -> dict:
    observations = _observation_set(outcomes, stage)
    ready = observations.get("ready") or {}
    if ready.get("status") != 200:
        if "exited" in ready:
            raise _Fail(
                f"the server exited with code {ready['exited']} before answering {_ready_path(outcomes, stage)}"
            )
        raise _Fail(
            f"the server did not answer {_ready_path(outcomes, stage)} with 200 within "
            f"{outcomes[stage].spec.service.ready_timeout_s:g} s (last: {_describe_response(ready)})"
        )
    return observations


def _ready_path(outcomes: dict[str, StageOutcome], stage: str) -> str:
    return f"GET {outcomes[stage].spec.service.ready_path}"


def _observation_set(outcomes: dict[str, StageOutcome], stage: str) -> dict:
    outcome = _stage(outcomes, stage)
    if outcome.observations is None:
        raise _Fail(
            f"the grader could not examine your work in stage {stage!r}: "
            f"{outcome.observations_error or outcome.summary()}"
        )
    return outcome.observations


def _describe_response(record: dict | None) -> str:
    if not record:
        return "no request was sent"
    if record.get("status") is None:
        return record.get("error") or "no answer"
    body = record.get("json") if "json" in record else record.get("text", "")
    return f"HTTP {record['status']} {_show(body, 200)}"


def _sent(record: dict) -> str:
    sent = record.get("sent")
    return f"{record.get('method', 'GET')} {record.get('path', '?')}" + (f" {sent[:200]}" if sent else "")


def _status_ok(expected: int | str, got: int | None) -> bool:
    if got is None:
        return False
    if expected == "2xx":
        return 200 <= got < 300
    if expected == "4xx":
        return 400 <= got < 500
    return got == expected


def _response(observations: dict, name: str) -> dict:
    record = observations.get("responses", {}).get(name)
    if record is None:
        raise _Fail(f"request {name!r} was not sent")
    return record


def _rows_sent(record: dict, key: str) -> int | None:
    return (record.get("sent_lengths") or {}).get(key)


def _judge_http_ready(check: HttpReadyCheck, outcomes, labels) -> str:
    observations = _service(outcomes, check.stage)
    ready = observations["ready"]
    body = ready.get("json")
    if check.json_ is not None:
        if not isinstance(body, dict) or any(body.get(k) != v for k, v in check.json_.items()):
            raise _Fail(
                f"{_ready_path(outcomes, check.stage)} answered {_describe_response(ready)}; "
                f"expected JSON with {_show(check.json_)}"
            )
    return f"{_ready_path(outcomes, check.stage)} answered 200 after {ready.get('seconds', 0):.1f} s"


def _judge_http(check: HttpCheck, outcomes, labels) -> str:
    observations = _service(outcomes, check.stage)
    problems = []
    for expect in check.expect:
        record = _response(observations, expect.request)
        status = record.get("status")
        if not _status_ok(expect.status, status):
            wanted = expect.status if isinstance(expect.status, str) else f"HTTP {expect.status}"
            problems.append(
                f"{expect.request}: sent {_sent(record)}\n  expected {wanted}, got {_describe_response(record)}"
            )
            continue
        body = record.get("json")
        if expect.json_ is not None and (
            not isinstance(body, dict) or any(body.get(k) != v for k, v in expect.json_.items())
        ):
            problems.append(
                f"{expect.request}: expected JSON with {_show(expect.json_)}, got {_describe_response(record)}"
            )
            continue
        if expect.predictions:
            values = body.get(expect.predictions) if isinstance(body, dict) else None
            rows = _rows_sent(record, expect.rows_key)
            if not isinstance(values, list) or (rows is not None and len(values) != rows):
                problems.append(
                    f'{expect.request}: expected {{"{expect.predictions}": [...]}} with {rows} item(s), '
                    f"got {_describe_response(record)}"
                )
            elif not all(type(v) is int and v in (0, 1) for v in values):
                problems.append(f"{expect.request}: every prediction must be the integer 0 or 1, got {_show(values)}")
    if problems:
        raise _Fail("\n".join(problems))
    return f"{len(check.expect)} request(s) answered as expected"


def _judge_http_accuracy(check: HttpAccuracyCheck, outcomes, labels) -> str:
    observations = _service(outcomes, check.stage)
    record = _response(observations, check.request)
    body = record.get("json")
    values = body.get(check.key) if isinstance(body, dict) else None
    if record.get("status") != 200 or not isinstance(values, list):
        raise _Fail(f"{check.request}: {_describe_response(record)}")
    predictions = _predictions(values, "the predictions")
    accuracy = _accuracy(predictions, labels[check.labels])
    feedback = f"holdout accuracy through the API {accuracy:.4f}; needs ≥ {check.min:g}"
    if accuracy < check.min:
        raise _Fail(feedback)
    return feedback


def _judge_latency(check: LatencyCheck, outcomes, labels) -> str:
    observations = _service(outcomes, check.stage)
    values = observations.get("latency_ms") or []
    statuses = observations.get("latency_statuses") or []
    if not values:
        raise _Fail("no latency calls were made")
    failed = [s for s in statuses if s != 200]
    if failed:
        raise _Fail(f"{len(failed)} of {len(values)} single-row calls did not return 200 (e.g. {failed[0]})")
    ordered = sorted(values)
    # Nearest-rank percentile.
    rank = max(1, math.ceil(check.percentile / 100 * len(ordered)))
    value = ordered[rank - 1]
    feedback = (
        f"p{check.percentile:g} of {len(values)} sequential calls: {value:.1f} ms (limit {check.max_ms:g} ms); "
        f"median {ordered[len(ordered) // 2]:.1f} ms"
    )
    if value > check.max_ms:
        raise _Fail(feedback)
    return feedback


def _audit_entries(check: AuditLogCheck, observations: dict) -> tuple[str, list[dict]]:
    captured = observations.get("captured", {})
    text = captured.get(check.file)
    if text is None:
        problem = captured.get(f"{check.file}:problem")
        if problem:
            raise _Fail(AUDIT_UNREADABLE.format(path=check.file, reason=problem))
        reason = captured.get(f"{check.file}:error", "missing")
        raise _Fail(AUDIT_MISSING.format(path=check.file, reason=reason))
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = load_json(line, name=f"line {number} of the audit log {check.file}")
        except LearnerFileError as exc:
            raise _Fail(AUDIT_BAD_LINE.format(problem=exc, start=line[:120])) from None
        if not isinstance(entry, dict):
            raise _Fail(f"line {number} of the audit log is not a JSON object")
        entries.append(entry)
    return text, entries


def _judge_audit_log(check: AuditLogCheck, outcomes, labels) -> str:
    from datetime import datetime, timedelta

    observations = _service(outcomes, check.stage)
    calls = [_response(observations, name) for name in check.logged]
    for name, call in zip(check.logged, calls, strict=True):
        if call.get("status") != 200:
            raise _Fail(f"{name}: a valid request failed: sent {_sent(call)}, got {_describe_response(call)}")
    text, all_entries = _audit_entries(check, observations)
    entries = [entry for entry in all_entries if check.line_key in entry]
    if check.rule == "one_line_per_request":
        if len(entries) != len(calls):
            raise _Fail(
                f"{len(calls)} POST requests were made, but the audit log has {len(entries)} line(s) "
                f"with {check.line_key!r}: expected exactly one per request"
            )
        return f"{len(calls)} requests, {len(entries)} JSON line(s)"
    if check.rule == "not_logged":
        extra = len(all_entries) - len(calls)
        if extra > 0:
            names = ", ".join(check.not_logged)
            raise _Fail(f"the audit log has {extra} line(s) more than the logged requests: {names} must not be logged")
        if extra < 0:
            raise _Fail(f"the audit log has fewer lines ({len(all_entries)}) than requests ({len(calls)})")
        return f"only the {len(calls)} logged requests appear"
    if check.rule == "forbidden":
        if not all_entries:
            raise _Fail("the audit log has no lines to inspect")
        lowered = text.lower()
        values = set()
        for name in [*check.logged, *check.not_logged]:
            record = observations.get("responses", {}).get(name) or {}
            value = (record.get("sent_strings") or {}).get(check.forbidden_key)
            if value:
                values.add(value)
        for value in sorted(values):
            if value.lower() in lowered:
                raise _Fail(f"a value sent as {check.forbidden_key!r} ({value}) appears in the audit log")
        if f'"{check.forbidden_key.lower()}"' in lowered:
            raise _Fail(f"the key {check.forbidden_key!r} appears in the audit log")
        return f"neither the key {check.forbidden_key!r} nor its values appear"
    if len(entries) != len(calls):
        raise _Fail(f"expected one line per request ({len(calls)}), found {len(entries)}")
    if check.rule == "sha256":
        for number, (entry, call) in enumerate(zip(entries, calls, strict=True), 1):
            value = entry.get("input_sha256")
            if not isinstance(value, str) or value.lower() != call.get("body_sha256"):
                raise _Fail(
                    f"line {number}: input_sha256 {_show(value)} is not the SHA-256 of the raw request body "
                    f"({call.get('body_sha256')}); hash the bytes as received, not re-serialised JSON"
                )
        return "input_sha256 matches the raw body of every request"
    ids = []
    for number, (entry, call) in enumerate(zip(entries, calls, strict=True), 1):
        missing = [name for name in check.fields if name not in entry]
        if missing:
            raise _Fail(f"line {number} lacks {', '.join(missing)}: {_show(entry)}")
        if "ts" in check.fields:
            try:
                stamp = datetime.fromisoformat(str(entry["ts"]).replace("Z", "+00:00"))
            except ValueError as exc:
                raise _Fail(f"line {number}: ts {entry['ts']!r} is not an ISO-8601 timestamp") from exc
            if stamp.utcoffset() != timedelta(0):
                raise _Fail(f"line {number}: ts {entry['ts']!r} must be in UTC (Z or +00:00)")
            window = observations.get("window")
            if window and not window[0] - AUDIT_TS_SLACK_S <= stamp.timestamp() <= window[1] + AUDIT_TS_SLACK_S:
                raise _Fail(f"line {number}: ts {entry['ts']!r} is not the time of the request")
        if "request_id" in check.fields:
            if not isinstance(entry["request_id"], str) or not entry["request_id"].strip():
                raise _Fail(f"line {number}: request_id must be a non-empty string")
            ids.append(entry["request_id"])
        if "predictions" in check.fields:
            body = call.get("json")
            if isinstance(body, dict) and entry["predictions"] != body.get("predictions"):
                raise _Fail(f"line {number}: predictions {_show(entry['predictions'])} differ from the response's")
    if len(set(ids)) != len(ids):
        raise _Fail("request_id values repeat: each request needs its own")
    return f"{', '.join(check.fields)} are right on all {len(entries)} lines"


_JUDGES = {
    HttpReadyCheck: _judge_http_ready,
    HttpCheck: _judge_http,
    HttpAccuracyCheck: _judge_http_accuracy,
    LatencyCheck: _judge_latency,
    AuditLogCheck: _judge_audit_log,
}


def judge_checks(
    *,
    spec: LabSpec,
    outcomes: dict[str, StageOutcome],
    labels: dict[str, list[int]],
    reference: dict[str, dict[str, Any]] | None,
) -> list[CheckOutcome]:
    results = []
    for check in spec.checks:
        try:
            feedback = _judge(check, outcomes, labels, reference)
            status, score = PASSED, float(check.points)
        except _Skip as exc:
            status, score, feedback = SKIPPED, 0.0, str(exc)
        except _Fail as exc:
            status, score, feedback = FAILED, 0.0, str(exc)
        except Exception:
            # Safety net: whatever learner bytes reach a judge, a bug of ours must not
            # become a platform retry that re-runs every stage to fail the same way.
            log.exception("judging check %r of lab %s failed", check.name, spec.slug)
            status, score, feedback = ERROR, 0.0, JUDGING_FAILED
        results.append(
            CheckOutcome(
                name=check.name,
                status=status,
                score=score,
                max_score=float(check.points),
                required=check.required,
                output=_clip(feedback),
                hint=check.hint if status != PASSED else "",
            )
        )
    return results


def verdict(*, spec: LabSpec, checks: list[CheckOutcome]) -> tuple[str, float, float]:
    """(status, score, max_score): passed when every required check passed and the
    score reaches the lab's pass mark (a percentage of the maximum); error when the
    platform could not judge a check (never charged to the learner as a fail)."""
    score = sum(check.score for check in checks)
    max_score = sum(check.max_score for check in checks)
    if any(check.status == ERROR for check in checks):
        return ERROR, score, max_score
    required_ok = all(check.status == PASSED for check in checks if check.required)
    reaches = max_score > 0 and 100.0 * score / max_score >= spec.pass_mark - 1e-9
    return (PASSED if required_ok and reaches else FAILED), score, max_score
