"""Judges of what a grader-owned stage observed: facts, holdout accuracy, the
agreement of two runs, and the match with the reference solution."""

from __future__ import annotations

import builtins
import math
import re
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


_BUILTIN_EXCEPTIONS = frozenset(
    name for name, value in vars(builtins).items() if isinstance(value, type) and issubclass(value, BaseException)
)
_RAISED = re.compile(r"^(?P<call>[A-Za-z_][\w.]*\(\)) raised (?P<type>[A-Za-z_][\w.]*)(?::.*)?$")


def _hidden_case_error(text: str) -> str:
    """What a probe reported instead of a value (the learner's error on a hidden
    case), without the parts learner code controls: the exception's message, and its
    name unless it is a built-in one, can carry the hidden input out. The learner's
    own source line stays: it is theirs, and it says where."""
    lines = text.splitlines()
    match = _RAISED.match(lines[0]) if lines else None
    if match is None:
        return "your code failed on this hidden case"
    kind = match["type"] if match["type"] in _BUILTIN_EXCEPTIONS else "an exception"
    where = [line for line in lines[1:] if line.startswith("  in ")][:1]
    return "\n".join([f"{match['call']} raised {kind} on this hidden case", *where])


def _hidden_case_mismatch(expected: Any, got: Any) -> str:
    """How the learner's result on a hidden case differs from the reference's, in
    shape and in which parts, never with the values: a learner's function that
    returns its input would otherwise print the hidden case into its feedback."""
    if isinstance(got, bool) or isinstance(got, (int, float)) or got is None:
        return f"your code gave {show(got)}"
    if isinstance(got, dict) and isinstance(expected, dict):
        if got.keys() != expected.keys():
            return f"your code gave a result with other parts than the reference's ({', '.join(map(str, expected))})"
        differ = [str(key) for key in expected if not _close(expected[key], got[key], 0.0)]
        return f"your code's result differs in: {', '.join(differ)}"
    if isinstance(got, list):
        return f"your code gave a list of {len(got)} item(s)"
    if isinstance(got, dict):
        return f"your code gave an object with {len(got)} field(s)"
    return f"your code gave a {type(got).__name__}"


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
            # learner hard-code it; what their code gave on it may carry the hidden
            # input itself. Say how it differs, never with values from either.
            if isinstance(got, str) and not isinstance(expected, str):
                mismatches.append(f"{key}: {_hidden_case_error(got)}")
            else:
                mismatches.append(
                    f"{key}: {_hidden_case_mismatch(expected, got)}, which does not match the reference solution"
                    + (f" (tolerance {check.tolerance:g})" if check.tolerance else "")
                )
    if mismatches:
        raise Fail("\n".join(mismatches))
    return f"{len(check.keys)} case(s) match the reference"
