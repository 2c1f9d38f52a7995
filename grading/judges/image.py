"""Judges of the learner's built image (a `build` stage) and of the container a
service stage ran from it: evidence the host took from the engine (the build's
result, the image's config and history, the files its layers added, the uids of
the container's processes, its health), never anything the image reported itself."""

from __future__ import annotations

from labs.lab_spec import ImageCheck

from ..image_build import is_root_user
from .base import Evidence, Fail
from .repository import find_secrets, shown_findings

NOT_BUILT = "there is no image to check: {error}"
BUILD_FAILED = "docker build failed"
DECLARES_ROOT = "the image runs as root: {why}. Add a USER with a non-root user after the last FROM"
RAN_AS_ROOT = "processes of the running container had uid 0 (root): {uids}"
NOT_RUNNING = "the container was not running when the grader looked ({state})"
TOO_LARGE = "the image is {size:.0f} MB, more than the {limit:g} MB budget"
SECRETS_IN_IMAGE = "possible secrets in the image (its history or the files its layers add; a file deleted by a later layer is still in the image):\n{shown}"
NO_HEALTHCHECK = "the Dockerfile declares no HEALTHCHECK (none to check)"
UNHEALTHY = "the HEALTHCHECK ({test}) did not report healthy: status {status}{last}"


def _build(evidence: Evidence, check: ImageCheck) -> dict:
    observations = evidence.observation_set(check.stage)
    if not observations.get("built"):
        raise Fail(NOT_BUILT.format(error=_failure(evidence, check.stage, observations)))
    return observations


def _failure(evidence: Evidence, stage: str, observations: dict) -> str:
    text = str(observations.get("error") or BUILD_FAILED)
    step = observations.get("failed_step")
    if isinstance(step, dict):
        text = f"step {step.get('step')} (line {step.get('line')}) `{step.get('text')}` failed: {text}"
    return text


def judge_image(check: ImageCheck, evidence: Evidence) -> str:
    if check.rule == "builds":
        observations = evidence.observation_set(check.stage)
        if not observations.get("built"):
            outcome = evidence.stage(check.stage)
            tail = outcome.output[-2500:].strip()
            raise Fail(_failure(evidence, check.stage, observations) + (f"\n\n{tail}" if tail else ""))
        image = observations["image"]
        return f"built in {evidence.stage(check.stage).duration_s:.1f} s ({image['size_bytes'] / 1e6:.0f} MB)"
    image = _build(evidence, check)["image"]
    if check.rule == "size":
        assert check.max_mb is not None
        size = image["size_bytes"] / 1e6
        if size > check.max_mb:
            raise Fail(TOO_LARGE.format(size=size, limit=check.max_mb))
        return f"{size:.0f} MB, within {check.max_mb:g} MB"
    if check.rule == "secrets":
        scanned = _build(evidence, check).get("scanned", {})
        findings = find_secrets(scanned)
        if findings:
            raise Fail(SECRETS_IN_IMAGE.format(shown=shown_findings(findings)))
        return f"no secrets found in the image's history and {len(scanned) - 1} file(s) its layers add"
    assert check.running is not None
    running = evidence.stage(check.running)
    container = running.container
    if check.rule == "non_root":
        user = image.get("user") or ""
        if is_root_user(user):
            raise Fail(DECLARES_ROOT.format(why=f"USER is {user!r}" if user else "no USER is declared"))
        if container is None or "uids" not in container:
            state = "it never started" if container is None else _state(container)
            raise Fail(NOT_RUNNING.format(state=state))
        if 0 in container["uids"]:
            raise Fail(RAN_AS_ROOT.format(uids=", ".join(map(str, container["uids"]))))
        return f"declares USER {user}; its processes ran as uid {', '.join(map(str, container['uids']))}"
    # healthcheck
    health = image.get("healthcheck")
    if not health or (health.get("Test") or ["NONE"])[0] == "NONE":
        return NO_HEALTHCHECK
    seen = (container or {}).get("health") or {}
    if seen.get("status") != "healthy":
        last = seen.get("last") or []
        shown = "".join(f"\n  exit {e.get('exit_code')}: {str(e.get('output', '')).strip()[:300]}" for e in last)
        raise Fail(UNHEALTHY.format(test=" ".join(health.get("Test", [])), status=seen.get("status"), last=shown))
    return f"the HEALTHCHECK ({' '.join(health.get('Test', []))}) reported healthy"


def _state(container: dict) -> str:
    if container.get("oom_killed"):
        return "killed: out of memory"
    return f"exited with code {container.get('exit_code')}"
