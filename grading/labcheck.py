"""A lab's own test suite: its reference solution and wrong variants, graded by
the real engine, must get the verdicts the lab declares."""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from labs.lab_spec import VariantSpec
from labs.models import Lab
from labs.variants import hidden_relative, materialise

from . import intake, runner
from .sandbox import SandboxUnavailable, image_digest
from .services import intake_limits, lab_assets_for, sandbox_factory_for


@dataclass(frozen=True)
class CaseResult:
    path: str
    expected: str
    expected_failing: tuple[str, ...]
    status: str
    score: float
    max_score: float
    failing: tuple[str, ...]
    problems: tuple[str, ...]
    # With repeat > 1: the verdict of each run, and each check whose verdict was not
    # the same in every run, with how many runs gave each status.
    verdicts: tuple[str, ...] = ()
    unstable: tuple[tuple[str, tuple[tuple[str, int], ...]], ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def stable(self) -> bool:
        return not self.unstable


PLATFORM_ATTEMPTS = 3


def _retrying(run):
    """Run `run()` again after a platform error (the engine failing to start a
    container happens now and then), as the worker retries a submission."""
    for attempt in range(1, PLATFORM_ATTEMPTS + 1):
        try:
            return run()
        except SandboxUnavailable:
            if attempt == PLATFORM_ATTEMPTS:
                raise
            time.sleep(2 * attempt)


def _unstable(runs: list[runner.PipelineResult]) -> tuple[tuple[str, tuple[tuple[str, int], ...]], ...]:
    """Checks whose status was not the same in every run, with a count per status
    (a check missing from a run counts as "absent")."""
    names = list(dict.fromkeys(check.name for result in runs for check in result.checks))
    found = []
    for name in names:
        counts: dict[str, int] = {}
        for result in runs:
            status = next((c.status for c in result.checks if c.name == name), "absent")
            counts[status] = counts.get(status, 0) + 1
        if len(counts) > 1:
            found.append((name, tuple(sorted(counts.items()))))
    return tuple(found)


def default_jobs() -> int:
    """As many cases at once as the machine has cores: a case mostly waits on its
    containers, and two sandboxes on two cores do about 1.7 times the work of one."""
    return max(1, os.cpu_count() or 1)


def lab_check(lab: Lab, *, repeat: int = 1, jobs: int | None = None) -> list[CaseResult]:
    """Grade the reference (expected to pass) and every variant; report mismatches.
    With `repeat` > 1 each is graded that many times, and checks whose verdict was
    not the same in every run are reported as unstable (a flaky grader). Up to
    `jobs` cases are graded at once (default: one per core), each in its own
    sandboxes, as the grading workers do; results keep the lab's order."""
    if repeat < 1:
        raise ValueError("repeat must be at least 1")
    jobs = default_jobs() if jobs is None else jobs
    if jobs < 1:
        raise ValueError("jobs must be at least 1")
    spec = lab.parsed_spec
    image = spec.image or settings.SHIPWRIGHT_LAB_IMAGE
    digest = image_digest(image)
    assets = lab_assets_for(lab)
    with tempfile.TemporaryDirectory(prefix="lab-check-") as scratch:
        snapshots = Path(scratch)
        reference = None
        if runner.needs_reference(spec):
            reference = _retrying(
                lambda: runner.reference_observations(
                    spec=spec,
                    assets=assets,
                    image=image,
                    image_digest=digest,
                    snapshot_dir=snapshots,
                    sandbox_factory=sandbox_factory_for(spec),
                )
            )
        cases: list[tuple[str, str, tuple[str, ...], VariantSpec | None]] = []
        if spec.reference:
            cases.append((spec.reference, "passed", (), None))
        cases += [(v.path, v.expect, tuple(v.failing), v) for v in spec.variants]

        def check_case(index: int) -> CaseResult:
            path, expected, expected_failing, variant = cases[index]
            if variant is None:
                source = assets.hidden / hidden_relative(path)
            else:
                # Variants are overlays: build each one whole (reference + its files - removals).
                source = materialise(assets.hidden, spec, variant, snapshots / f"variant-{index}")
            if source.is_dir():
                snapshot = intake.snapshot_from_directory(source, dest_dir=snapshots, limits=intake_limits())
            else:
                snapshot = intake.snapshot_from_notebook_file(source, dest_dir=snapshots, limits=intake_limits())
            runs = [
                _retrying(
                    lambda: runner.run_pipeline(
                        spec=spec,
                        snapshot=snapshot.path,
                        assets=assets,
                        image=image,
                        run_id=f"labcheck-{uuid.uuid4().hex[:12]}",
                        reference=reference,
                        sandbox_factory=sandbox_factory_for(spec),
                    )
                )
                for _ in range(repeat)
            ]
            return _case_result(path, expected, expected_failing, runs, repeat)

        with ThreadPoolExecutor(max_workers=min(jobs, max(1, len(cases))), thread_name_prefix="lab-check") as pool:
            results = list(pool.map(check_case, range(len(cases))))
    return results


def _case_result(
    path: str, expected: str, expected_failing: tuple[str, ...], runs: list[runner.PipelineResult], repeat: int
) -> CaseResult:
    result = runs[0]
    failing = tuple(c.name for c in result.checks if c.status == "failed")
    problems: list[str] = []
    for run in runs:
        run_failing = {c.name for c in run.checks if c.status == "failed"}
        found = []
        if run.status != expected:
            found.append(f"expected {expected}, got {run.status} ({run.score:g}/{run.max_score:g})")
        found += [f"check {name!r} should fail but did not" for name in expected_failing if name not in run_failing]
        problems += [problem for problem in found if problem not in problems]
    return CaseResult(
        path=path,
        expected=expected,
        expected_failing=expected_failing,
        status=result.status,
        score=result.score,
        max_score=result.max_score,
        failing=failing,
        problems=tuple(problems),
        verdicts=tuple(run.status for run in runs) if repeat > 1 else (),
        unstable=_unstable(runs) if repeat > 1 else (),
    )
