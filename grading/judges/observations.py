"""Judges of what a grader-owned stage observed: facts, holdout accuracy, the
agreement of two runs, and the match with the reference solution."""

from __future__ import annotations

import math
from typing import Any

from labs.lab_spec import AccuracyCheck, AgreementCheck, ObservationCheck, ReferenceCheck

from .base import Evidence, Fail, accuracy, accuracy_band, predictions, show


def judge_observation(check: ObservationCheck, evidence: Evidence) -> str:
    value = evidence.observation(check.stage, check.key)
    if value is True:
        return "ok"
    if isinstance(value, str) and value:
        raise Fail(value)
    raise Fail(f"expected {check.key} to hold, got {show(value)}")


def judge_accuracy(check: AccuracyCheck, evidence: Evidence) -> str:
    predicted = predictions(evidence.observation(check.stage, check.key), "the predictions")
    holdout = accuracy(predicted, evidence.labels[check.labels])
    feedback = f"holdout accuracy in {accuracy_band(holdout)} ({len(predicted)} rows); needs ≥ {check.min:g}"
    if holdout < check.min:
        raise Fail(feedback)
    return feedback


def judge_agreement(check: AgreementCheck, evidence: Evidence) -> str:
    stage_a, key_a = check.a.split(":", 1)
    stage_b, key_b = check.b.split(":", 1)
    first = predictions(evidence.observation(stage_a, key_a), f"{stage_a} predictions")
    second = predictions(evidence.observation(stage_b, key_b), f"{stage_b} predictions")
    if len(first) != len(second) or not first:
        raise Fail(f"the two runs gave {len(first)} and {len(second)} predictions")
    same = sum(1 for a, b in zip(first, second, strict=True) if a == b) / len(first)
    feedback = f"the two runs agree on {same:.1%} of rows; needs ≥ {check.min:.0%}"
    if same < check.min:
        raise Fail(feedback)
    return feedback


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


def judge_reference(check: ReferenceCheck, evidence: Evidence) -> str:
    if evidence.reference is None or check.stage not in evidence.reference:
        # Not the learner's doing: the safety net turns this into a platform error.
        raise RuntimeError(f"no reference observations for stage {check.stage!r}")
    expected_all = evidence.reference[check.stage]
    mismatches = []
    for key in check.keys:
        got = evidence.observation(check.stage, key)
        expected = expected_all.get(key)
        if not _close(expected, got, check.tolerance):
            # The expected value is a result on hidden data: showing it would let a
            # learner hard-code it. Show what their code gave.
            if isinstance(got, str) and not isinstance(expected, str):
                mismatches.append(f"{key}: {got}")
            else:
                mismatches.append(
                    f"{key}: your code gave {show(got)}, which does not match the reference solution"
                    + (f" (tolerance {check.tolerance:g})" if check.tolerance else "")
                )
    if mismatches:
        raise Fail("\n".join(mismatches))
    return f"{len(check.keys)} case(s) match the reference"
