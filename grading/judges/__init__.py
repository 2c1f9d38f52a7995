"""Judging: turn what the sandbox observed into per-check verdicts.

Pure functions, no I/O beyond what they are handed. `base` holds the shared types
(Fail, Skip, Evidence, StageOutcome, CheckOutcome), one module per kind of evidence
holds the judges (`pipeline`, `observations`, `service`, `repository`), and
`registry.JUDGES` maps each check kind to its judge.
"""

from __future__ import annotations

import logging
from typing import Any

from labs.lab_spec import LabSpec

from .base import (
    ERROR,
    FAILED,
    FILE_MISSING,
    NOT_A_NUMBER,
    PASSED,
    SKIPPED,
    CheckOutcome,
    Evidence,
    Fail,
    Skip,
    StageOutcome,
    command_label,
)
from .registry import JUDGES, judge_for

__all__ = [
    "ERROR",
    "FAILED",
    "FILE_MISSING",
    "JUDGES",
    "JUDGING_FAILED",
    "MAX_FEEDBACK_CHARS",
    "NOT_A_NUMBER",
    "PASSED",
    "SKIPPED",
    "CheckOutcome",
    "Evidence",
    "Fail",
    "Skip",
    "StageOutcome",
    "command_label",
    "judge_checks",
    "judge_for",
    "verdict",
]

log = logging.getLogger(__name__)

MAX_FEEDBACK_CHARS = 4000
# A fault of the platform while judging one check: deterministic (the same evidence
# would fail the same way again), so it is reported on that check, the submission ends
# in `error` (not the learner's fail) and nothing is run again.
JUDGING_FAILED = (
    "the grader itself failed while judging this check (a platform fault, logged for the staff); "
    "this is not a verdict on your work"
)


def _clip(text: str, limit: int = MAX_FEEDBACK_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 20] + "\n… (feedback cut)"


def judge_checks(
    *,
    spec: LabSpec,
    outcomes: dict[str, StageOutcome],
    labels: dict[str, list[int]],
    reference: dict[str, dict[str, Any]] | None,
) -> list[CheckOutcome]:
    evidence = Evidence(outcomes=outcomes, labels=labels, reference=reference)
    results = []
    for check in spec.checks:
        try:
            feedback = judge_for(check.kind)(check, evidence)
            status, score = PASSED, float(check.points)
        except Skip as exc:
            status, score, feedback = SKIPPED, 0.0, str(exc)
        except Fail as exc:
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
