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
import math
from dataclasses import dataclass, field
from typing import Any

from labs.spec import (
    AccuracyCheck,
    AgreementCheck,
    ExitCodeCheck,
    FilesCheck,
    LabSpec,
    Limits,
    ObservationCheck,
    ReferenceCheck,
    ReportedMetricCheck,
    StageSpec,
)

PASSED, FAILED, ERROR, SKIPPED = "passed", "failed", "error", "skipped"
MAX_FEEDBACK_CHARS = 4000


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
    observations: dict[str, Any] | None = None
    observations_error: str = ""

    @property
    def succeeded(self) -> bool:
        return self.status == "ran" and self.exit_code == 0 and not self.timed_out and not self.oom_killed

    @property
    def label(self) -> str:
        return command_label(self.spec.run)

    def summary(self) -> str:
        """One sentence a learner understands about how the stage ended."""
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


def _json_file(outcome: StageOutcome, path: str) -> Any:
    data = outcome.files.get(path)
    if data is None:
        raise _Fail(f"{path} was not found after stage {outcome.spec.name!r} (or is not a regular file)")
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _Fail(f"{path} is not valid JSON: {exc}") from exc


def _number(document: Any, path: str, name: str) -> float:
    if not isinstance(document, dict) or name not in document:
        raise _Fail(f"{path} has no field {name!r}")
    value = document[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _Fail(f"{path} field {name!r} must be a finite number, got {_show(value)}")
    return float(value)


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
                problems.append(f"{path} was not found after {outcome.label} (or is not a regular file)")
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
                if isinstance(got, str) and not isinstance(expected, str):
                    mismatches.append(f"{key}: {got}")
                else:
                    mismatches.append(f"{key}: expected {_show(expected)}\n  got {_show(got)}")
        if mismatches:
            raise _Fail("\n".join(mismatches))
        return f"{len(check.keys)} case(s) match the reference"

    raise RuntimeError(f"unknown check kind {type(check).__name__}")


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
    score reaches the lab's pass mark (a percentage of the maximum)."""
    score = sum(check.score for check in checks)
    max_score = sum(check.max_score for check in checks)
    required_ok = all(check.status == PASSED for check in checks if check.required)
    reaches = max_score > 0 and 100.0 * score / max_score >= spec.pass_mark - 1e-9
    return (PASSED if required_ok and reaches else FAILED), score, max_score
