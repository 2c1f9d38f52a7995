"""The learner's CI job, run in the sandbox (grading/ci_plan.py plans it, the CI probe
runs it): its steps as stage-like outcomes, and the judge of "your CI passes".

A test step (one whose `run` invokes pytest) must itself succeed: `continue-on-error`
keeps a failing step from failing the job on GitHub, but failing tests hidden that way
are not a passing CI here (docs/ci.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from labs.lab_spec import CiCheck, Limits, StageSpec

from .base import Evidence, Fail, StageOutcome

STEP_OUTPUT_IN_FEEDBACK = 1500


@dataclass
class CiStepOutcome(StageOutcome):
    """One step of the learner's CI job, shown like a stage."""

    step: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        return f"step {self.step_number} “{(self.step or {}).get('name', '')}”"

    @property
    def step_number(self) -> int:
        return int((self.step or {}).get("index", 0))

    def summary(self) -> str:
        return step_summary(self.step or {})


def step_summary(step: dict[str, Any]) -> str:
    label = f"step {step.get('index')} “{step.get('name', '')}”"
    note = step.get("note") or ""
    status = step.get("status")
    if status in ("skipped", "unsupported"):
        return f"{label}: {note}"
    if status == "timed_out":
        return f"{label} was {note}"
    if step.get("exit_code") == 0:
        return f"{label} succeeded in {step.get('duration_s', 0):.1f} s"
    text = (
        f"{label} exited with code {step.get('exit_code')}" if step.get("exit_code") is not None else f"{label} failed"
    )
    if step.get("continue_on_error"):
        text += " (continue-on-error: the job goes on)"
    return text + (f": {note}" if note else "")


def step_outcomes(stage: StageSpec, limits: Limits, steps: list[dict[str, Any]]) -> list[CiStepOutcome]:
    """The steps the probe recorded, as outcomes stored and shown like stages."""
    outcomes = []
    for step in steps:
        spec = StageSpec(name=f"{stage.name}_step{int(step['index'])}", run=[str(step.get("command") or step["name"])])
        skipped = step.get("status") == "skipped"
        outcomes.append(
            CiStepOutcome(
                spec=spec,
                limits=limits,
                status="skipped" if skipped else "ran",
                skipped_because=step.get("note", ""),
                exit_code=step.get("exit_code"),
                timed_out=step.get("status") == "timed_out",
                duration_s=float(step.get("duration_s") or 0.0),
                output=str(step.get("output") or ""),
                output_truncated_bytes=int(step.get("output_truncated_bytes") or 0),
                step=step,
            )
        )
    return outcomes


def _tail(text: str) -> str:
    text = text.strip()
    return text if len(text) <= STEP_OUTPUT_IN_FEEDBACK else "…" + text[-STEP_OUTPUT_IN_FEEDBACK:]


def judge_ci(check: CiCheck, evidence: Evidence) -> str:
    observations = evidence.observation_set(check.stage)
    if observations.get("plan_error"):
        raise Fail(observations["plan_error"])
    plan = observations.get("plan") or {}
    steps = observations.get("steps") or []
    where = f"{plan.get('workflow')}, job {plan.get('job')}"
    skipped_matrix = "; ".join(
        f"{_matrix(entry['matrix'])} not run ({entry['reason']})" for entry in plan.get("skipped_matrix", [])
    )
    failed = [s for s in steps if s.get("conclusion") == "failure"]
    if failed:
        step = failed[0]
        raise Fail(
            f"your CI ({where}) fails on this commit at {step_summary(step)}.\n"
            "If it passes on GitHub, this is the step where the grader's run differs "
            "(Python 3.11 and the lab's packages, no network).\n\n" + _tail(str(step.get("output", "")))
        )
    if observations.get("job_status") != "success":
        raise Fail(f"your CI ({where}) did not finish: {observations.get('job_status')} (the stage's time ran out)")
    tests = [s for s in steps if s.get("runs_pytest") and s.get("status") != "skipped"]
    if not tests and not plan.get("named"):
        raise Fail(f"your CI ({where}) passed, but no step that runs pytest ran (each was skipped by its `if:`)")
    hidden = [s for s in tests if s.get("outcome") != "success"]
    if hidden:
        step = hidden[0]
        raise Fail(
            f"your CI ({where}) reports success, but its test step failed: {step_summary(step)}. "
            "continue-on-error only hides failing tests from the job's status; it does not make them pass.\n\n"
            + _tail(str(step.get("output", "")))
        )
    ran = sum(1 for s in steps if s.get("status") != "skipped")
    feedback = f"your CI ({where}{', ' + _matrix(plan['matrix']) if plan.get('matrix') else ''}) passes on this commit: {ran} step(s) ran"
    if skipped_matrix:
        feedback += f"; {skipped_matrix}"
    for note in plan.get("notes", []):
        feedback += f"; {note}"
    return feedback


def _matrix(matrix: dict[str, Any]) -> str:
    return "matrix " + ", ".join(f"{k}={v}" for k, v in matrix.items()) if matrix else "the job"
