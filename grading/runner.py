"""The runner: one lab pipeline over one snapshot, stage by stage, in the sandbox.

No ORM here either: `grading.services` hands in the lab's spec and assets and
stores what comes back. Each stage runs in a fresh container over the shared
workspace; a stage whose `needs` did not succeed is skipped with the reason; files
that checks need are read back right after the stage that produces them (a later
stage could change them); grader-owned stages report observations through their
own channel (/grader-out). Verdicts are computed afterwards by `grading.judges`.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import tarfile
import tempfile
import time
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labs.lab_spec import ImageCheck, LabSpec, StageSpec

from . import ci_plan, image_build
from . import judges as judging
from .judges import CheckOutcome, StageOutcome
from .judges.ci import step_outcomes
from .learner_files import TOO_LARGE, LearnerFileError, decode_utf8, load_json
from .sandbox import BuildResult, FileTooLarge, Sandbox, SandboxUnavailable, SnapshotRejected
from .sandbox import Limits as SandboxLimits

log = logging.getLogger(__name__)

MAX_READBACK_BYTES = 20 * 1024 * 1024
MAX_OBSERVATIONS_BYTES = 5 * 1024 * 1024
# A file a service stage captures (an audit log): as the service probe's MAX_CAPTURE.
MAX_CAPTURE_BYTES = 1_000_000
CAPTURE_ABSENT = "no such regular file"
GRADER_OUTPUT_NOTE = "(output of a grader-owned stage is not shown: it could reveal hidden tests)"
OBSERVATIONS_UNREADABLE = "the observations could not be read ({problem})"
OBSERVATIONS_NOT_OBJECT = "observations.json does not hold a JSON object"
# A notebook lab's learner-facing stage (`executed_notebook:` in lab.yaml, never a
# grader stage) leaves the executed notebook in the workspace
# (content/<course>/labs/validate-data/hidden/grader/run_notebook.py --keep): shown to
# the learner, never evidence. Bounded: it is stored with the submission.
EXECUTED_NOTEBOOK = "executed.ipynb"
MAX_EXECUTED_NOTEBOOK_BYTES = 4 * 1024 * 1024
CI_PLAN_FAILED = (
    "the grader could not plan a run of this workflow (a fault of the grader, logged for the staff): "
    "simplify the job that runs pytest, or ask the course staff"
)


class JudgingError(Exception):
    """Judging failed after every stage had run: a fault of the platform, but not one
    that running the stages again could fix (judging is deterministic)."""


@dataclass(frozen=True)
class LabAssets:
    """A lab's starter and hidden files, extracted once per content hash."""

    root: Path
    starter: Path
    hidden: Path


@dataclass
class PipelineResult:
    outcomes: list[StageOutcome]
    checks: list[CheckOutcome]
    status: str
    score: float
    max_score: float
    timings: dict[str, float] = field(default_factory=dict)
    # The executed notebook as the grader stage left it (None if it left none), or why
    # it could not be kept.
    executed_notebook: bytes | None = None
    executed_notebook_note: str = ""

    def observations(self) -> dict[str, dict[str, Any]]:
        return {o.spec.name: o.observations for o in self.outcomes if o.observations is not None}


def lab_assets(*, lab_hash: str, starter_zip: bytes, hidden_archive: bytes, cache_dir: Path) -> LabAssets:
    """Extract a lab's files under `cache_dir/<lab_hash>` (atomically, once)."""
    root = Path(cache_dir) / lab_hash
    if not (root / ".complete").exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{lab_hash[:12]}-", dir=cache_dir))
        try:
            starter = staging / "starter"
            starter.mkdir()
            with zipfile.ZipFile(io.BytesIO(starter_zip)) as archive:
                for info in archive.infolist():
                    parts = Path(info.filename).parts[1:]  # drop "<slug>-starter/"
                    if not parts or info.is_dir() or ".." in parts:
                        continue
                    target = starter.joinpath(*parts)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(archive.read(info))
            hidden = staging / "hidden"
            hidden.mkdir()
            with tarfile.open(fileobj=io.BytesIO(hidden_archive), mode="r:gz") as archive:
                archive.extractall(hidden, filter="data")
            _make_world_readable(staging)
            (staging / ".complete").write_text(lab_hash)
            try:
                os.rename(staging, root)
            except OSError:
                # Another worker extracted the same lab first; theirs is identical.
                shutil.rmtree(staging, ignore_errors=True)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return LabAssets(root=root, starter=root / "starter", hidden=root / "hidden")


def _make_world_readable(path: Path) -> None:
    # The sandbox user (uid 1000) reads assets through a read-only bind mount.
    path.chmod(0o755)
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames:
            Path(dirpath, name).chmod(0o755)
        for name in filenames:
            file = Path(dirpath, name)
            file.chmod(0o755 if file.stat().st_mode & 0o111 else 0o644)


PROBES_DIR = Path(__file__).resolve().parent / "probes"
PROBE_MOUNT = "/grader/_shipwright"
_PROBE_SCRIPTS = {
    "service": "service_probe.py",
    "collect": "collect_files.py",
    "pytest": "pytest_probe.py",
    "ci": "ci_probe.py",
}
# Probes that start learner code: they run as the grader (root with SETUID, SETGID and
# KILL only) and start it as uid 1000 (grading/sandbox.py, `as_grader`).
GRADER_UID_PROBES = frozenset({"service", "pytest", "ci"})
# Files a probe needs beside it besides _PROBE_LIBRARIES (the pytest plugin is
# imported by the learner's test process from the same read-only folder).
_PROBE_EXTRAS = {
    "pytest": (PROBES_DIR / "shipwright_pytest.py",),
    "ci": (PROBES_DIR / "ci_expressions.py",),
}
# Copied beside every probe: its helpers, and the learner-bytes parser the host uses too.
_PROBE_LIBRARIES = (PROBES_DIR / "probe_common.py", Path(__file__).resolve().parent / "learner_files.py")


def _probe_config(stage: StageSpec, assets: LabAssets) -> dict:
    if stage.service is not None:
        service = stage.service
        requests = json.loads((assets.hidden / service.requests).read_text()) if service.requests else {}
        if isinstance(requests, list):
            requests = {"requests": requests}
        return {
            "start": service.start,
            # The learner's image runs in its own container (Sandbox.run_image_service).
            "external": service.image_from is not None,
            "port": service.port,
            "ready_path": service.ready_path,
            "ready_timeout_s": service.ready_timeout_s,
            "env": service.env,
            # From a built image's container the host reads them (_captured).
            "capture": [] if service.image_from else service.capture,
            "requests": requests.get("requests", []),
            "latency": requests.get("latency"),
            # Mounted with the stage's assets (the spec requires it among them).
            "driver": f"/grader/{service.driver}" if service.driver else None,
        }
    if stage.collect is not None:
        return stage.collect.model_dump()
    if stage.pytest is not None:
        return {**stage.pytest.model_dump(), "time_s": max(10.0, (stage.time_s or 300) - 15)}
    return {}  # ci: the plan is written per run (_ci_assets_dir)


def _captured(raw: dict[str, bytes | None], too_large: dict[str, dict[str, int]]) -> dict[str, str | None]:
    """What the host read from a built image's container, in the service probe's
    shape (service_probe._capture): the text, or None and why under "PATH:error" (not
    there) or "PATH:problem" (there, but too big or not UTF-8 text)."""
    captured: dict[str, str | None] = {}
    for path, data in raw.items():
        captured[path] = None
        if path in too_large:
            captured[f"{path}:problem"] = TOO_LARGE.format(name=path, **too_large[path])
        elif data is None:
            captured[f"{path}:error"] = CAPTURE_ABSENT
        else:
            try:
                captured[path] = decode_utf8(data, name=path)
            except LearnerFileError as exc:
                captured[f"{path}:problem"] = str(exc)
    return captured


def _ci_plan(stage: StageSpec, outcomes: dict[str, StageOutcome], limits) -> tuple[dict | None, str]:
    """(plan, "") for the CI probe, or (None, why nothing can run), from the workflow
    files the collect stage read before any learner code ran."""
    assert stage.ci is not None
    source = outcomes[stage.ci.workflows_from]
    files = (source.observations or {}).get("files", {}) if source.succeeded else {}
    workflows = {p: t for p, t in files.items() if p.startswith(".github/workflows/")}
    try:
        plan = ci_plan.plan(workflows, python_versions=list(stage.ci.python_versions), job_id=stage.ci.job)
        json.dumps(plan)
    except ci_plan.PlanError as exc:
        return None, str(exc)
    except Exception:
        # A workflow shape the planner does not handle is its bug, not the learner's
        # fault, but running the stages again would fail the same way: say so once.
        log.exception("planning the CI job of stage %s failed", stage.name)
        return None, CI_PLAN_FAILED
    if plan["unsupported"]:
        return plan, (
            f"the grader cannot run {plan['workflow']} job {plan['job']} as GitHub would: "
            + "; ".join(plan["unsupported"])
        )
    plan["time_s"] = max(10.0, limits.time_s - 15)
    return plan, ""


def _ci_assets_dir(assets: LabAssets, stage: StageSpec, plan: dict) -> Path:
    """A per-run copy of the CI probe's folder with this submission's plan."""
    cached = stage_assets_dir(assets, stage)
    assert cached is not None
    staging = Path(tempfile.mkdtemp(prefix=".ci-", dir=assets.root))
    shutil.copytree(cached, staging, dirs_exist_ok=True)
    (staging / "_shipwright" / f"{stage.name}.json").write_text(json.dumps(plan))
    _make_world_readable(staging)
    return staging


def stage_argv(stage: StageSpec) -> list[str]:
    """What the container runs: the stage's argv, or a platform probe with its config."""
    if stage.probe is None:
        return list(stage.run)
    if stage.build is not None:
        # Built by the host's engine (Sandbox.build_image); this is what it amounts to.
        return ["docker", "build", "--file", stage.build.dockerfile, "."]
    # -s -E: no user site-packages, no PYTHON* variables: only the image's Python and
    # the probe's own folder (its sys.path[0]) are imported by a probe.
    script = f"{PROBE_MOUNT}/{_PROBE_SCRIPTS[stage.probe]}"
    return ["python", "-s", "-E", script, f"{PROBE_MOUNT}/{stage.name}.json"]


def _probes_digest() -> str:
    digest = hashlib.sha256()
    for path in [*sorted(PROBES_DIR.glob("*.py")), *_PROBE_LIBRARIES]:
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def stage_assets_dir(assets: LabAssets, stage: StageSpec) -> Path | None:
    """A folder holding only the hidden assets this stage may see, plus the
    platform probe and its config for probe stages (cached per lab content)."""
    if not stage.assets and stage.probe is None:
        return None
    key = "\0".join(sorted(stage.assets)) + "\0" + stage.model_dump_json()
    if stage.probe is not None:
        key += _probes_digest()
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    target = assets.root / "stages" / f"{stage.name}-{digest}"
    if target.exists():
        return target
    staging = Path(tempfile.mkdtemp(prefix=".stage-", dir=assets.root))
    try:
        for relative in stage.assets:
            source = assets.hidden / relative.rstrip("/")
            destination = staging / relative.rstrip("/")
            destination.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, destination)
            else:
                shutil.copy2(source, destination)
        if stage.probe is not None:
            platform = staging / "_shipwright"
            platform.mkdir()
            extras = _PROBE_EXTRAS.get(stage.probe, ())
            for source in (PROBES_DIR / _PROBE_SCRIPTS[stage.probe], *_PROBE_LIBRARIES, *extras):
                shutil.copy2(source, platform / source.name)
            (platform / f"{stage.name}.json").write_text(json.dumps(_probe_config(stage, assets)))
        _make_world_readable(staging)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(staging, target)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def official_files(spec: LabSpec, assets: LabAssets) -> dict[str, bytes]:
    result = {}
    for item in spec.files:
        base, _, relative = item.from_.partition("/")
        source = (assets.starter if base == "starter" else assets.hidden) / relative
        result[item.to] = source.read_bytes()
    return result


def hidden_labels(spec: LabSpec, assets: LabAssets) -> dict[str, list[int]]:
    labels = {}
    for check in spec.checks:
        path = getattr(check, "labels", None)
        if path and path not in labels:
            labels[path] = json.loads((assets.hidden / path).read_text())
    return labels


def _files_needed(spec: LabSpec) -> dict[str, set[str]]:
    """Files to read back after each stage, as the lab's check kinds declare them."""
    needed: dict[str, set[str]] = {}
    for check in spec.checks:
        for stage, paths in check.files_read_back().items():
            needed.setdefault(stage, set()).update(paths)
    return needed


BUILD_CONTEXT_TOO_LARGE = "the build context is {size:.1f} MB, more than the {limit} MB this lab allows"
BUILD_FAILED_AT = "the build failed at step {step} (line {line}): {text}"
BUILD_TIMED_OUT = "the build was stopped after {seconds:g} s (the time limit)"
BUILD_OUT_OF_MEMORY = "the build was killed: its {memory_mb} MB memory limit was reached"


def _build_context(
    snapshot: Path, stage: StageSpec, workdir: Path, official: dict[str, bytes]
) -> tuple[bytes | None, str]:
    """(the build context as a tar, "") or (None, why it cannot be built) from the
    snapshot: the learner's files with the lab's official files over them (as in the
    workspace), minus their .dockerignore, with the Dockerfile's FROM lines pointing
    at the local base images (image_build.prepare_dockerfile)."""
    import docker.utils

    assert stage.build is not None
    build = stage.build
    root = workdir / "context"
    root.mkdir()
    with tarfile.open(snapshot) as archive:
        archive.extractall(root, filter="data")
    for relative, data in official.items():
        target = root / relative
        if target.is_symlink() or target.is_dir():
            shutil.rmtree(target) if target.is_dir() and not target.is_symlink() else target.unlink()
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    path = root / build.dockerfile
    if path.is_symlink() or not path.is_file():
        return None, image_build.NO_DOCKERFILE.format(path=build.dockerfile)
    try:
        text = path.read_text()
        path.write_text(image_build.prepare_dockerfile(text, allowed=build.bases, path=build.dockerfile))
    except UnicodeDecodeError:
        return None, f"{build.dockerfile} is not UTF-8 text"
    except image_build.DockerfileRejected as exc:
        return None, str(exc)
    exclude: list[str] = []
    ignore = root / ".dockerignore"
    if ignore.is_file() and not ignore.is_symlink():
        lines = ignore.read_text(errors="replace").splitlines()
        exclude = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    context = docker.utils.tar(str(root), exclude=exclude, dockerfile=(build.dockerfile, None), gzip=False)
    data = context.read()
    if len(data) > build.context_mb * 2**20:
        return None, BUILD_CONTEXT_TOO_LARGE.format(size=len(data) / 2**20, limit=build.context_mb)
    return data, ""


def _scan_secrets(spec: LabSpec, stage: StageSpec) -> bool:
    return any(isinstance(c, ImageCheck) and c.stage == stage.name and c.rule == "secrets" for c in spec.checks)


def _run_build(
    sandbox: Sandbox, spec: LabSpec, stage: StageSpec, limits, snapshot: Path, official: dict[str, bytes]
) -> tuple[StageOutcome, str | None]:
    """The build stage: the outcome (output shown like a stage's; the host's
    observations of the image) and the built image's tag for later stages."""
    assert stage.build is not None
    steps: list[image_build.Instruction] = []
    with tempfile.TemporaryDirectory(prefix="build-") as scratch:
        context, why_not = _build_context(snapshot, stage, Path(scratch), official)
        if context is not None:
            steps = image_build.instructions((Path(scratch) / "context" / stage.build.dockerfile).read_text())
    if context is None:
        outcome = StageOutcome(spec=stage, limits=limits, status="ran", exit_code=1, output=why_not)
        outcome.observations = {"built": False, "error": why_not}
        return outcome, None
    result: BuildResult = sandbox.build_image(
        name=stage.name,
        context=context,
        dockerfile=stage.build.dockerfile,
        limits=_sandbox_limits(limits),
        index_image=image_build.INDEX_IMAGE,
        index_port=image_build.INDEX_PORT,
    )
    outcome = StageOutcome(
        spec=stage,
        limits=limits,
        status="ran",
        exit_code=0 if result.image else 1,
        timed_out=result.timed_out,
        oom_killed=result.oom_killed,
        duration_s=result.duration_s,
        output=result.output,
        output_truncated_bytes=result.output_truncated_bytes,
    )
    if result.image is None:
        failed = image_build.failed_step(result.output, steps)
        if result.timed_out:
            why = BUILD_TIMED_OUT.format(seconds=limits.time_s)
        elif result.oom_killed:
            why = BUILD_OUT_OF_MEMORY.format(memory_mb=limits.memory_mb)
        else:
            why = result.error or "the build failed"
        observations: dict[str, Any] = {"built": False, "error": why}
        if failed is not None:
            observations["failed_step"] = {"step": failed.step, "line": failed.line, "text": failed.text}
        outcome.observations = observations
        return outcome, None
    image = sandbox.inspect_image(result.image)
    observations = {
        "built": True,
        "image": image_build.config_summary(image),
        "history": [str(h.get("CreatedBy") or "") for h in sandbox.image_history(result.image)],
    }
    if _scan_secrets(spec, stage):
        # The allowed bases' layers are the platform's: only what the Dockerfile added is scanned.
        skip = {layer for name in stage.build.bases for layer in _base_layers(sandbox, name)}
        scanned = image_build.history_text(sandbox.image_history(result.image))
        scanned.update(image_build.layer_files(sandbox.save_image(result.image), skip_layers=skip))
        observations["scanned"] = scanned
    outcome.observations = observations
    return outcome, result.image


def _base_layers(sandbox: Sandbox, name: str) -> list[str]:
    image = sandbox.inspect_image(image_build.LOCAL_BASES[name])
    return list((image.get("RootFS") or {}).get("Layers") or [])


def _sandbox_limits(limits) -> SandboxLimits:
    return SandboxLimits(**limits.model_dump())


def run_pipeline(
    *,
    spec: LabSpec,
    snapshot: Path,
    assets: LabAssets,
    image: str,
    run_id: str,
    reference: dict[str, dict[str, Any]] | None,
    judge: bool = True,
    on_stage: Callable[[int, StageSpec, float], None] | None = None,
    sandbox_factory: Callable[..., Sandbox] = Sandbox,
    labels: dict[str, str] | None = None,
) -> PipelineResult:
    """Run every stage of `spec` over `snapshot` and judge the checks.

    Raises grading.sandbox.SandboxUnavailable (a platform error) when the engine
    or image is missing; everything learner code does is a result, not an error.
    """
    needed = _files_needed(spec)
    files = official_files(spec, assets)
    outcomes: dict[str, StageOutcome] = {}
    timings: dict[str, float] = {}
    executed_notebook: bytes | None = None
    executed_notebook_note = ""
    built: dict[str, str | None] = {}  # build stage -> the run's tag of the image it built
    started = time.monotonic()
    sandbox = sandbox_factory(
        run_id=run_id,
        image=image,
        workspace_mb=spec.limits.workspace_mb,
        labels={"shipwright.lab": spec.slug, **(labels or {})},
    )
    with sandbox:
        try:
            sandbox.load_tar(snapshot)
            if files:
                sandbox.add_readonly_files(files)
            blocked = ""
        except SnapshotRejected as exc:
            # The submission itself cannot be set up (too big for the workspace, an
            # archive tar cannot extract): a result for the learner, not a retry.
            blocked = str(exc)
        timings["sandbox_start_s"] = round(time.monotonic() - started, 3)
        for index, stage in enumerate(spec.stages):
            if blocked:
                outcomes[stage.name] = StageOutcome(
                    spec=stage, limits=stage.limits(spec.limits), status="ran", blocked=blocked
                )
                continue
            limits = stage.limits(spec.limits)
            failed_need = next((need for need in stage.needs if not outcomes[need].succeeded), None)
            if failed_need is not None:
                outcomes[stage.name] = StageOutcome(
                    spec=stage, limits=limits, status="skipped", skipped_because=failed_need
                )
                continue
            if stage.build is not None:
                if on_stage is not None:
                    on_stage(index, stage, limits.time_s)
                outcomes[stage.name], built[stage.name] = _run_build(sandbox, spec, stage, limits, snapshot, files)
                continue
            assets_dir = None
            plan: dict | None = None
            if stage.ci is not None:
                plan, why_not = _ci_plan(stage, outcomes, limits)
                if why_not:
                    # Nothing the grader could run faithfully: said by name, never skipped silently.
                    outcomes[stage.name] = StageOutcome(
                        spec=stage, limits=limits, status="ran", blocked=why_not, observations={"plan_error": why_not}
                    )
                    continue
                assert plan is not None
                assets_dir = _ci_assets_dir(assets, stage, plan)
            if on_stage is not None:
                on_stage(index, stage, limits.time_s)
            container: dict[str, Any] | None = None
            try:
                image_from = stage.service.image_from if stage.service is not None else None
                if stage.service is not None and image_from is not None:
                    image_tag = built.get(image_from)
                    assert image_tag is not None, "needs: guarantees the build succeeded"
                    result, container = sandbox.run_image_service(
                        name=stage.name,
                        image=image_tag,
                        probe_argv=stage_argv(stage),
                        limits=_sandbox_limits(limits),
                        assets_dir=stage_assets_dir(assets, stage),
                        env=stage.service.env,
                        capture=stage.service.capture,
                        max_capture_bytes=MAX_CAPTURE_BYTES,
                    )
                else:
                    result = sandbox.run(
                        name=stage.name,
                        argv=stage_argv(stage),
                        limits=_sandbox_limits(limits),
                        assets_dir=assets_dir or stage_assets_dir(assets, stage),
                        grader_out=stage.grader_owned,
                        as_grader=stage.probe in GRADER_UID_PROBES,
                    )
            finally:
                if assets_dir is not None:
                    shutil.rmtree(assets_dir, ignore_errors=True)
            outcome = StageOutcome(
                spec=stage,
                limits=limits,
                status="ran",
                exit_code=result.exit_code,
                timed_out=result.timed_out,
                oom_killed=result.oom_killed,
                pids_limit_hit=result.pids_limit_hit,
                duration_s=result.duration_s,
                cpu_s=result.cpu_s,
                peak_memory_mb=result.peak_memory_mb,
                output=result.output,
                output_truncated_bytes=result.output_truncated_bytes,
                container=container,
            )
            for path in sorted(needed.get(stage.name, ())):
                try:
                    outcome.files[path] = sandbox.read_file(path, max_bytes=MAX_READBACK_BYTES)
                except FileTooLarge as exc:
                    # A 2 GB sparse file costs nothing to write: say what it was.
                    outcome.files[path] = None
                    outcome.file_errors[path] = TOO_LARGE.format(name=path, size=exc.size, limit=exc.max_bytes)
            if stage.executed_notebook:
                # The learner-facing run (never grader-owned, before every grader stage:
                # see LabSpec): read at once, before a later stage's learner code can
                # touch the workspace. Whatever the stage ended like: a notebook cut off
                # by the time limit still shows the cells that ran.
                try:
                    notebook = sandbox.read_file(stage.executed_notebook, max_bytes=MAX_EXECUTED_NOTEBOOK_BYTES)
                except FileTooLarge as exc:
                    executed_notebook_note = TOO_LARGE.format(
                        name=EXECUTED_NOTEBOOK, size=exc.size, limit=exc.max_bytes
                    )
                else:
                    if notebook is not None:
                        executed_notebook, executed_notebook_note = notebook, ""
            if stage.grader_owned:
                if not outcome.succeeded:
                    # Only a probe that ran to its end vouches for its observations;
                    # anything else in /grader-out may have been planted.
                    outcome.observations_error = f"the grader's probe did not finish ({outcome.summary()})"
                else:
                    try:
                        raw = sandbox.read_grader_out("observations.json", max_bytes=MAX_OBSERVATIONS_BYTES)
                    except FileTooLarge as exc:
                        # What learner code returned made the record too big (a huge list).
                        raw = None
                        outcome.observations_error = OBSERVATIONS_UNREADABLE.format(
                            problem=TOO_LARGE.format(name="observations.json", size=exc.size, limit=exc.max_bytes)
                        )
                    if raw is None and stage.probe is not None and not outcome.observations_error:
                        # A platform probe that exited 0 has written its observations
                        # after stopping every learner process: their absence is ours.
                        raise SandboxUnavailable(
                            f"the {stage.probe} probe of stage {stage.name!r} exited 0 but left no observations"
                        )
                    if raw is None:
                        if not outcome.observations_error:
                            outcome.observations_error = f"no observations were recorded ({outcome.summary()})"
                    else:
                        # The probe's record carries what learner code wrote or answered
                        # (an HTTP body, a log), so it is parsed with the same bounds.
                        try:
                            observations = load_json(
                                raw, name="observations.json", max_bytes=MAX_OBSERVATIONS_BYTES, allow_non_finite=True
                            )
                        except LearnerFileError as exc:
                            outcome.observations_error = OBSERVATIONS_UNREADABLE.format(problem=exc)
                        else:
                            if isinstance(observations, dict):
                                outcome.observations = observations
                            else:
                                outcome.observations_error = OBSERVATIONS_UNREADABLE.format(
                                    problem=OBSERVATIONS_NOT_OBJECT
                                )
            if container is not None and "captured" in container and outcome.observations is not None:
                outcome.observations["captured"] = _captured(container.pop("captured"), container.pop("capture_errors"))
            outcomes[stage.name] = outcome
            if plan is not None and outcome.observations is not None:
                # The plan is the host's own; the steps are what the probe recorded.
                outcome.observations["plan"] = plan
                steps = outcome.observations.get("steps")
                if isinstance(steps, list):
                    for step_outcome in step_outcomes(stage, limits, [s for s in steps if isinstance(s, dict)]):
                        outcomes[step_outcome.spec.name] = step_outcome
        teardown_started = time.monotonic()
    timings["teardown_s"] = round(time.monotonic() - teardown_started, 3)
    check_results: list[CheckOutcome] = []
    status, score, max_score = judging.FAILED, 0.0, 0.0
    if judge:
        try:
            expected = hidden_labels(spec, assets)
            check_results = judging.judge_checks(spec=spec, outcomes=outcomes, labels=expected, reference=reference)
            status, score, max_score = judging.verdict(spec=spec, checks=check_results)
        except Exception as exc:
            # judge_checks already contains a failing check; this is the rest (the
            # lab's own labels). The caller must not re-run the stages for it.
            raise JudgingError(f"{type(exc).__name__}: {exc}") from exc
    return PipelineResult(
        outcomes=list(outcomes.values()),
        checks=check_results,
        status=status,
        score=score,
        max_score=max_score,
        timings=timings,
        executed_notebook=executed_notebook,
        executed_notebook_note=executed_notebook_note,
    )


def needs_reference(spec: LabSpec) -> bool:
    return any(check.uses_reference for check in spec.checks)


def reference_stages(spec: LabSpec) -> list[StageSpec]:
    """The stages a reference run needs: those the `reference` checks read and what
    they depend on (`needs`, a CI stage's `workflows_from`, a service's `image_from`),
    in the lab's order. A capstone's training, serving and CI need not run again for
    the observations of its drift probe."""
    by_name = {stage.name: stage for stage in spec.stages}
    wanted = {name for check in spec.checks if check.uses_reference for name in check.stages_read()}
    pending = list(wanted)
    while pending:
        stage = by_name[pending.pop()]
        depends = list(stage.needs)
        if stage.ci is not None:
            depends.append(stage.ci.workflows_from)
        if stage.service is not None and stage.service.image_from is not None:
            depends.append(stage.service.image_from)
        for name in depends:
            if name not in wanted:
                wanted.add(name)
                pending.append(name)
    return [stage for stage in spec.stages if stage.name in wanted]


def reference_observations(
    *,
    spec: LabSpec,
    assets: LabAssets,
    image: str,
    image_digest: str,
    snapshot_dir: Path,
    sandbox_factory: Callable[..., Sandbox] = Sandbox,
    labels: dict[str, str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Observations of the lab's reference solution, computed once per lab content
    and image, and cached beside the assets. They stay on the grader's side."""
    from . import intake

    cache = assets.root / f"reference-{image_digest.replace(':', '_')[:80]}.json"
    if cache.exists():
        return json.loads(cache.read_text())
    if not spec.reference:
        raise RuntimeError(f"lab {spec.slug} has reference checks but no reference solution")
    source = assets.hidden / spec.reference.removeprefix("hidden/")
    limits = intake.IntakeLimits()
    snapshot_dir.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        snapshot = intake.snapshot_from_directory(source, dest_dir=snapshot_dir, limits=limits)
    else:
        snapshot = intake.snapshot_from_notebook_file(source, dest_dir=snapshot_dir, limits=limits)
    result = run_pipeline(
        spec=spec.model_copy(update={"stages": reference_stages(spec)}),
        snapshot=snapshot.path,
        assets=assets,
        image=image,
        run_id=f"ref-{spec.slug[:20]}-{uuid.uuid4().hex[:12]}",  # run ids are 40 characters at most
        reference=None,
        judge=False,
        sandbox_factory=sandbox_factory,
        labels=labels,
    )
    observations = result.observations()
    missing = [
        stage
        for check in spec.checks
        if check.uses_reference
        for stage in check.stages_read()
        if stage not in observations
    ]
    if missing:
        raise RuntimeError(
            f"the reference solution of {spec.slug} produced no observations in {missing}: "
            + "; ".join(o.summary() + "\n" + o.output[-2000:] for o in result.outcomes)
        )
    # Atomic: a worker reading the cache meanwhile sees the old file or the whole new one.
    tmp = cache.with_suffix(".tmp")
    tmp.write_text(json.dumps(observations))
    os.replace(tmp, cache)
    return observations
