"""A lab's own test suite: its reference solution and wrong variants, graded by
the real engine, must get the verdicts the lab declares."""

from __future__ import annotations

import tempfile
import time
import uuid
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

    @property
    def ok(self) -> bool:
        return not self.problems


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


def lab_check(lab: Lab) -> list[CaseResult]:
    """Grade the reference (expected to pass) and every variant; report mismatches."""
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
        results = []
        for index, (path, expected, expected_failing, variant) in enumerate(cases):
            if variant is None:
                source = assets.hidden / hidden_relative(path)
            else:
                # Variants are overlays: build each one whole (reference + its files - removals).
                source = materialise(assets.hidden, spec, variant, snapshots / f"variant-{index}")
            if source.is_dir():
                snapshot = intake.snapshot_from_directory(source, dest_dir=snapshots, limits=intake_limits())
            else:
                snapshot = intake.snapshot_from_notebook_file(source, dest_dir=snapshots, limits=intake_limits())
            result = _retrying(
                lambda snapshot=snapshot: runner.run_pipeline(
                    spec=spec,
                    snapshot=snapshot.path,
                    assets=assets,
                    image=image,
                    run_id=f"labcheck-{uuid.uuid4().hex[:12]}",
                    reference=reference,
                    sandbox_factory=sandbox_factory_for(spec),
                )
            )
            failing = tuple(c.name for c in result.checks if c.status == "failed")
            problems = []
            if result.status != expected:
                problems.append(f"expected {expected}, got {result.status} ({result.score:g}/{result.max_score:g})")
            for name in expected_failing:
                if name not in failing:
                    problems.append(f"check {name!r} should fail but did not")
            results.append(
                CaseResult(
                    path=path,
                    expected=expected,
                    expected_failing=expected_failing,
                    status=result.status,
                    score=result.score,
                    max_score=result.max_score,
                    failing=failing,
                    problems=tuple(problems),
                )
            )
    return results
