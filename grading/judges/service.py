"""Judges of a learner's server, from what the service probe observed: the ready
answer, the lab's requests and their answers, latencies and the audit log."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from labs.lab_spec import AuditLogCheck, HttpAccuracyCheck, HttpCheck, HttpReadyCheck, LatencyCheck, ServiceSpec

from ..learner_files import LearnerFileError, load_json
from .base import Evidence, Fail, accuracy, accuracy_band, predictions, show

AUDIT_TS_SLACK_S = 120
AUDIT_MISSING = "no audit log at {path} after the requests ({reason})"
AUDIT_UNREADABLE = "the audit log {path} could not be read: {reason}"
AUDIT_BAD_LINE = "{problem} (the line begins {start!r})"
CONTAINER_EXITED = "the container {how} before answering {ready}"
CONTAINER_TAIL_CHARS = 1500


def _service(evidence: Evidence, stage: str) -> dict:
    observations = evidence.observation_set(stage)
    ready = observations.get("ready") or {}
    if ready.get("status") != 200:
        container = evidence.outcomes[stage].container
        if "exited" in ready and container is not None:
            # The learner's built image: how its container ended is the host's to say.
            how = (
                "was killed: out of memory"
                if container.get("oom_killed")
                else f"exited with code {container.get('exit_code')}"
            )
            tail = str(container.get("output") or "").strip()[-CONTAINER_TAIL_CHARS:]
            raise Fail(
                CONTAINER_EXITED.format(how=how, ready=_ready_path(evidence, stage))
                + (f"; its last output:\n{tail}" if tail else " (it printed nothing)")
            )
        if "exited" in ready:
            raise Fail(f"the server exited with code {ready['exited']} before answering {_ready_path(evidence, stage)}")
        raise Fail(
            f"the server did not answer {_ready_path(evidence, stage)} with 200 within "
            f"{_service_spec(evidence, stage).ready_timeout_s:g} s (last: {_describe_response(ready)})"
        )
    return observations


def _service_spec(evidence: Evidence, stage: str) -> ServiceSpec:
    service = evidence.outcomes[stage].spec.service
    assert service is not None, f"stage {stage} runs no service (the lab spec's validator requires one)"
    return service


def _ready_path(evidence: Evidence, stage: str) -> str:
    return f"GET {_service_spec(evidence, stage).ready_path}"


def _describe_response(record: dict | None) -> str:
    if not record:
        return "no request was sent"
    if record.get("status") is None:
        return record.get("error") or "no answer"
    body = record.get("json") if "json" in record else record.get("text", "")
    return f"HTTP {record['status']} {show(body, 200)}"


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
        raise Fail(f"request {name!r} was not sent")
    return record


def _rows_sent(record: dict, key: str) -> int | None:
    return (record.get("sent_lengths") or {}).get(key)


def judge_http_ready(check: HttpReadyCheck, evidence: Evidence) -> str:
    observations = _service(evidence, check.stage)
    ready = observations["ready"]
    body = ready.get("json")
    if check.json_ is not None:
        if not isinstance(body, dict) or any(body.get(k) != v for k, v in check.json_.items()):
            raise Fail(
                f"{_ready_path(evidence, check.stage)} answered {_describe_response(ready)}; "
                f"expected JSON with {show(check.json_)}"
            )
    return f"{_ready_path(evidence, check.stage)} answered 200 after {ready.get('seconds', 0):.1f} s"


def judge_http(check: HttpCheck, evidence: Evidence) -> str:
    observations = _service(evidence, check.stage)
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
                f"{expect.request}: expected JSON with {show(expect.json_)}, got {_describe_response(record)}"
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
                problems.append(f"{expect.request}: every prediction must be the integer 0 or 1, got {show(values)}")
    if problems:
        raise Fail("\n".join(problems))
    return f"{len(check.expect)} request(s) answered as expected"


def judge_http_accuracy(check: HttpAccuracyCheck, evidence: Evidence) -> str:
    observations = _service(evidence, check.stage)
    record = _response(observations, check.request)
    body = record.get("json")
    values = body.get(check.key) if isinstance(body, dict) else None
    if record.get("status") != 200 or not isinstance(values, list):
        raise Fail(f"{check.request}: {_describe_response(record)}")
    predicted = predictions(values, "the predictions")
    holdout = accuracy(predicted, evidence.labels[check.labels])
    feedback = f"holdout accuracy through the API in {accuracy_band(holdout)}; needs ≥ {check.min:g}"
    if holdout < check.min:
        raise Fail(feedback)
    return feedback


def judge_latency(check: LatencyCheck, evidence: Evidence) -> str:
    observations = _service(evidence, check.stage)
    values = observations.get("latency_ms") or []
    statuses = observations.get("latency_statuses") or []
    if not values:
        raise Fail("no latency calls were made")
    failed = [s for s in statuses if s != 200]
    if failed:
        raise Fail(f"{len(failed)} of {len(values)} single-row calls did not return 200 (e.g. {failed[0]})")
    ordered = sorted(values)
    # Nearest-rank percentile.
    rank = max(1, math.ceil(check.percentile / 100 * len(ordered)))
    value = ordered[rank - 1]
    feedback = (
        f"p{check.percentile:g} of {len(values)} sequential calls: {value:.1f} ms (limit {check.max_ms:g} ms); "
        f"median {ordered[len(ordered) // 2]:.1f} ms"
    )
    if value > check.max_ms:
        raise Fail(feedback)
    return feedback


def _audit_entries(check: AuditLogCheck, observations: dict) -> tuple[str, list[dict]]:
    captured = observations.get("captured", {})
    text = captured.get(check.file)
    if text is None:
        problem = captured.get(f"{check.file}:problem")
        if problem:
            raise Fail(AUDIT_UNREADABLE.format(path=check.file, reason=problem))
        reason = captured.get(f"{check.file}:error", "missing")
        raise Fail(AUDIT_MISSING.format(path=check.file, reason=reason))
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = load_json(line, name=f"line {number} of the audit log {check.file}")
        except LearnerFileError as exc:
            raise Fail(AUDIT_BAD_LINE.format(problem=exc, start=line[:120])) from None
        if not isinstance(entry, dict):
            raise Fail(f"line {number} of the audit log is not a JSON object")
        entries.append(entry)
    return text, entries


def judge_audit_log(check: AuditLogCheck, evidence: Evidence) -> str:
    observations = _service(evidence, check.stage)
    calls = [_response(observations, name) for name in check.logged]
    for name, call in zip(check.logged, calls, strict=True):
        if call.get("status") != 200:
            raise Fail(f"{name}: a valid request failed: sent {_sent(call)}, got {_describe_response(call)}")
    text, all_entries = _audit_entries(check, observations)
    entries = [entry for entry in all_entries if check.line_key in entry]
    if check.rule == "one_line_per_request":
        if len(entries) != len(calls):
            raise Fail(
                f"{len(calls)} POST requests were made, but the audit log has {len(entries)} line(s) "
                f"with {check.line_key!r}: expected exactly one per request"
            )
        return f"{len(calls)} requests, {len(entries)} JSON line(s)"
    if check.rule == "not_logged":
        extra = len(all_entries) - len(calls)
        if extra > 0:
            names = ", ".join(check.not_logged)
            raise Fail(f"the audit log has {extra} line(s) more than the logged requests: {names} must not be logged")
        if extra < 0:
            raise Fail(f"the audit log has fewer lines ({len(all_entries)}) than requests ({len(calls)})")
        return f"only the {len(calls)} logged requests appear"
    if check.rule == "forbidden":
        if not all_entries:
            raise Fail("the audit log has no lines to inspect")
        lowered = text.lower()
        values = set()
        for name in [*check.logged, *check.not_logged]:
            record = observations.get("responses", {}).get(name) or {}
            value = (record.get("sent_strings") or {}).get(check.forbidden_key)
            if value:
                values.add(value)
        for value in sorted(values):
            if value.lower() in lowered:
                raise Fail(f"a value sent as {check.forbidden_key!r} ({value}) appears in the audit log")
        if f'"{check.forbidden_key.lower()}"' in lowered:
            raise Fail(f"the key {check.forbidden_key!r} appears in the audit log")
        return f"neither the key {check.forbidden_key!r} nor its values appear"
    if len(entries) != len(calls):
        raise Fail(f"expected one line per request ({len(calls)}), found {len(entries)}")
    if check.rule == "sha256":
        for number, (entry, call) in enumerate(zip(entries, calls, strict=True), 1):
            value = entry.get("input_sha256")
            if not isinstance(value, str) or value.lower() != call.get("body_sha256"):
                raise Fail(
                    f"line {number}: input_sha256 {show(value)} is not the SHA-256 of the raw request body "
                    f"({call.get('body_sha256')}); hash the bytes as received, not re-serialised JSON"
                )
        return "input_sha256 matches the raw body of every request"
    ids = []
    for number, (entry, call) in enumerate(zip(entries, calls, strict=True), 1):
        missing = [name for name in check.fields if name not in entry]
        if missing:
            raise Fail(f"line {number} lacks {', '.join(missing)}: {show(entry)}")
        if "ts" in check.fields:
            try:
                stamp = datetime.fromisoformat(str(entry["ts"]).replace("Z", "+00:00"))
            except ValueError as exc:
                raise Fail(f"line {number}: ts {entry['ts']!r} is not an ISO-8601 timestamp") from exc
            if stamp.utcoffset() != timedelta(0):
                raise Fail(f"line {number}: ts {entry['ts']!r} must be in UTC (Z or +00:00)")
            window = observations.get("window")
            if window and not window[0] - AUDIT_TS_SLACK_S <= stamp.timestamp() <= window[1] + AUDIT_TS_SLACK_S:
                raise Fail(f"line {number}: ts {entry['ts']!r} is not the time of the request")
        if "request_id" in check.fields:
            if not isinstance(entry["request_id"], str) or not entry["request_id"].strip():
                raise Fail(f"line {number}: request_id must be a non-empty string")
            ids.append(entry["request_id"])
        if "predictions" in check.fields:
            body = call.get("json")
            if isinstance(body, dict) and entry["predictions"] != body.get("predictions"):
                raise Fail(f"line {number}: predictions {show(entry['predictions'])} differ from the response's")
    if len(set(ids)) != len(ids):
        raise Fail("request_id values repeat: each request needs its own")
    return f"{', '.join(check.fields)} are right on all {len(entries)} lines"
