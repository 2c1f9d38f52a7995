"""Grading services: every write about submissions goes through here.

`submission_grade` is the one code path that grades: the Celery task calls it, and
so does `manage.py grade` (in-process). It claims the submission with a conditional
UPDATE, so a redelivered message does nothing.
"""

from __future__ import annotations

import logging
import socket
import threading
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from courses.markdown import render
from courses.models import Enrollment
from labs.models import Lab

from . import budget, runner
from .intake import IntakeLimits, Snapshot
from .models import CheckResult, StageRun, Submission
from .sandbox import SandboxError, SandboxUnavailable, image_digest, reap_leftovers

log = logging.getLogger(__name__)

ACTIVE_SUBMISSION = "You already have a submission being graded. Wait for its verdict before submitting again."
COOLOFF = "Please wait {seconds} s before submitting this lab again."
LAB_NOT_GRADEABLE = "This lab is not open for grading yet."
GRADING_DELAYED = "Grading is delayed: the grading service is unavailable. Your submission will be graded automatically; it does not count as an attempt."
JUDGING_FAILED = "Your work ran, but the grader failed while judging it (a platform fault, logged for the staff). This is not a verdict on your work."
GAVE_UP = "Grading failed {attempts} times because of a platform problem; an instructor has been notified. This does not count against you."


class SubmissionRejected(Exception):
    """A submission that may not be created now (shown to the learner as is)."""


@dataclass(frozen=True)
class Retry:
    countdown_s: float


def intake_limits() -> IntakeLimits:
    return IntakeLimits(
        upload_max_bytes=settings.SHIPWRIGHT_UPLOAD_MAX_BYTES,
        unpacked_max_bytes=settings.SHIPWRIGHT_UNPACKED_MAX_BYTES,
        max_entries=settings.SHIPWRIGHT_ARCHIVE_MAX_ENTRIES,
        git_timeout_s=settings.SHIPWRIGHT_GIT_TIMEOUT_S,
        allow_loopback_git=settings.SHIPWRIGHT_GIT_ALLOW_LOOPBACK,
    )


def snapshot_dir() -> Path:
    path = Path(settings.SHIPWRIGHT_SNAPSHOT_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path


def submission_check_allowed(*, user, lab: Lab, enforce_limits: bool = True) -> None:
    """Raises SubmissionRejected when `user` may not submit to `lab` right now."""
    if not lab.gradeable:
        raise SubmissionRejected(LAB_NOT_GRADEABLE)
    if not enforce_limits:
        return
    if Submission.objects.filter(user=user).active().exists():
        raise SubmissionRejected(ACTIVE_SUBMISSION)
    cooloff = settings.SHIPWRIGHT_RESUBMIT_COOLOFF_S
    if cooloff > 0:
        last = Submission.objects.filter(user=user, lab=lab).order_by("-created_at").first()
        if last is not None:
            wait = cooloff - (timezone.now() - last.created_at).total_seconds()
            if wait > 0:
                raise SubmissionRejected(COOLOFF.format(seconds=int(wait) + 1))


def submission_create(
    *,
    user,
    lab: Lab,
    snapshot: Snapshot,
    git_url: str = "",
    git_ref: str = "",
    intake_s: float = 0.0,
    enqueue: bool = True,
    enforce_limits: bool = True,
) -> Submission:
    """Record a submission of an accepted snapshot and queue it for grading.

    Enrolls the learner in the lab's course if needed. The grading task is sent
    only after the transaction commits. Raises SubmissionRejected (and writes
    nothing) when the learner already has one running or is within the cool-off.
    """
    with transaction.atomic():
        # Serialise a learner's submissions so two tabs cannot both pass the checks.
        get_user_model().objects.select_for_update().filter(pk=user.pk).first()
        submission_check_allowed(user=user, lab=lab, enforce_limits=enforce_limits)
        Enrollment.objects.get_or_create(user=user, course=lab.course)
        submission = Submission.objects.create(
            user=user,
            lab=lab,
            source_kind=snapshot.source_kind,
            source_name=snapshot.source_name[:500],
            git_url=git_url[:500],
            git_ref=git_ref[:200],
            commit=snapshot.commit or "",
            snapshot_path=snapshot.path.name,
            snapshot_sha256=snapshot.sha256,
            snapshot_size=snapshot.size,
            intake_s=round(intake_s, 3),
            lab_hash=lab.content_hash,
            stage_count=len(lab.spec.get("stages", [])),
        )
        if enqueue:
            submission_enqueue(submission)
    return submission


def submission_enqueue(submission: Submission, *, countdown_s: float = 0) -> None:
    """Send the grading task once the current transaction commits."""
    from .tasks import grade_submission

    spec = submission.lab.parsed_spec
    limits = budget.grading_budget(spec)
    queue = settings.SHIPWRIGHT_LOW_QUEUE if submission.low_priority else settings.SHIPWRIGHT_GRADING_QUEUE
    pk = str(submission.pk)
    transaction.on_commit(
        lambda: grade_submission.apply_async(
            args=[pk],
            queue=queue,
            countdown=countdown_s or None,
            soft_time_limit=limits.soft_s,
            time_limit=limits.hard_s,
        )
    )


def submission_regrade(*, submission: Submission) -> Submission:
    """Grade the same immutable snapshot again, on the low-priority queue.

    A certificate already issued is never revoked by a regrade.
    """
    with transaction.atomic():
        updated = (
            Submission.objects.filter(pk=submission.pk)
            .exclude(status=Submission.Status.RUNNING)
            .update(
                status=Submission.Status.QUEUED,
                low_priority=True,
                attempts=0,
                error_message="",
                current_stage="",
                stage_index=0,
                lab_hash=submission.lab.content_hash,
                started_at=None,
                finished_at=None,
            )
        )
        submission.refresh_from_db()
        if updated:
            submission_enqueue(submission)
    return submission


def submission_claim(*, submission_id, worker: str) -> bool:
    """Move a queued submission to running; False if someone else has it (or it is done)."""
    now = timezone.now()
    return bool(
        Submission.objects.filter(pk=submission_id, status=Submission.Status.QUEUED).update(
            status=Submission.Status.RUNNING,
            attempts=F("attempts") + 1,
            started_at=now,
            heartbeat_at=now,
            claimed_by=worker[:200],
            error_message="",
        )
    )


class _Heartbeat:
    """Touches `heartbeat_at` while a run is in progress, from its own thread and
    database connection, so the reaper can tell a slow run from a dead worker."""

    def __init__(self, submission_id):
        self.submission_id = submission_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="grading-heartbeat")

    def _loop(self) -> None:
        try:
            while not self._stop.wait(budget.HEARTBEAT_INTERVAL_S):
                Submission.objects.filter(pk=self.submission_id, status=Submission.Status.RUNNING).update(
                    heartbeat_at=timezone.now()
                )
        finally:
            connection.close()

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def _lab_assets(lab: Lab) -> runner.LabAssets:
    return runner.lab_assets(
        lab_hash=lab.content_hash,
        starter_zip=bytes(lab.starter_zip),
        hidden_archive=bytes(lab.hidden_archive),
        cache_dir=Path(settings.SHIPWRIGHT_ASSET_CACHE_DIR),
    )


def submission_grade(submission_id, *, worker: str | None = None) -> Submission | Retry | None:
    """Claim and grade one submission; idempotent.

    Returns the finished submission; None when it was not claimable (already
    claimed or finished: a redelivered message); Retry when the platform failed
    (engine unreachable, image missing) and attempts remain: the submission is back
    in the queue with a "grading is delayed" note, not charged to the learner.
    """
    worker = worker or f"{socket.gethostname()}:{threading.get_ident()}"
    if not submission_claim(submission_id=submission_id, worker=worker):
        return None
    submission = Submission.objects.select_related("lab", "lab__course", "user").get(pk=submission_id)
    lab = submission.lab
    spec = lab.parsed_spec
    image = spec.image or settings.SHIPWRIGHT_LAB_IMAGE
    run_id = run_id_for(submission)

    def on_stage(index: int, stage, limit_s: float) -> None:
        Submission.objects.filter(pk=submission.pk).update(
            current_stage=stage.name,
            stage_index=index + 1,
            stage_started_at=timezone.now(),
            stage_limit_s=limit_s,
            heartbeat_at=timezone.now(),
        )

    try:
        with _Heartbeat(submission.pk):
            digest = image_digest(image)
            assets = _lab_assets(lab)
            reference = None
            if runner.needs_reference(spec):
                reference = runner.reference_observations(
                    spec=spec,
                    assets=assets,
                    image=image,
                    image_digest=digest,
                    snapshot_dir=snapshot_dir(),
                )
            result = runner.run_pipeline(
                spec=spec,
                snapshot=snapshot_dir() / submission.snapshot_path,
                assets=assets,
                image=image,
                run_id=run_id,
                reference=reference,
                on_stage=on_stage,
            )
    except SandboxUnavailable as exc:
        return _platform_failure(submission, str(exc))
    except runner.JudgingError:
        # Every stage ran and judging their evidence failed. Judging is deterministic, so
        # a retry would re-run the whole pipeline only to fail the same way: end now.
        log.exception("grading %s failed while judging", submission.pk)
        return _judging_failure(submission)
    except Exception as exc:
        # A fault of ours (or a soft time limit): never the learner's failure.
        log.exception("grading %s failed inside the platform", submission.pk)
        return _platform_failure(submission, f"internal error: {type(exc).__name__}")
    _store_result(submission, result, image=image, digest=digest)
    submission.refresh_from_db()
    return submission


def _judging_failure(submission: Submission) -> Submission:
    """End a submission in `error` without a retry (see submission_grade)."""
    Submission.objects.filter(pk=submission.pk).update(
        status=Submission.Status.ERROR,
        error_message=JUDGING_FAILED,
        finished_at=timezone.now(),
        current_stage="",
    )
    submission.refresh_from_db()
    submission.result = submission_result_json(submission)
    submission.save(update_fields=["result"])
    return submission


def _platform_failure(submission: Submission, reason: str) -> Submission | Retry:
    log.warning("grading %s: platform error: %s", submission.pk, reason)
    if submission.attempts < settings.SHIPWRIGHT_MAX_ATTEMPTS:
        Submission.objects.filter(pk=submission.pk).update(
            status=Submission.Status.QUEUED,
            error_message=f"{GRADING_DELAYED} ({reason})",
            current_stage="",
            stage_index=0,
        )
        return Retry(countdown_s=min(300.0, 10.0 * 2 ** (submission.attempts - 1)))
    Submission.objects.filter(pk=submission.pk).update(
        status=Submission.Status.ERROR,
        error_message=f"{GAVE_UP.format(attempts=submission.attempts)} ({reason})",
        finished_at=timezone.now(),
        current_stage="",
    )
    submission.refresh_from_db()
    submission.result = submission_result_json(submission)
    submission.save(update_fields=["result"])
    return submission


def _store_result(submission: Submission, result: runner.PipelineResult, *, image: str, digest: str) -> None:
    """Write stage runs, check results and the verdict in one transaction
    (idempotent: rows are keyed by name), and award a certificate when this
    result completes the course."""
    with transaction.atomic():
        for order, outcome in enumerate(result.outcomes):
            StageRun.objects.update_or_create(
                submission=submission,
                name=outcome.spec.name,
                defaults={
                    "order": order,
                    "command": " ".join(runner.stage_argv(outcome.spec))[:500],
                    "status": StageRun.Status.SKIPPED if outcome.status == "skipped" else StageRun.Status.RAN,
                    "grader": outcome.spec.grader_owned,
                    "exit_code": outcome.exit_code,
                    "timed_out": outcome.timed_out,
                    "oom_killed": outcome.oom_killed,
                    "pids_limit_hit": outcome.pids_limit_hit,
                    "duration_s": outcome.duration_s,
                    "cpu_s": outcome.cpu_s,
                    "peak_memory_mb": outcome.peak_memory_mb,
                    "time_limit_s": outcome.limits.time_s,
                    "memory_limit_mb": outcome.limits.memory_mb,
                    "output": outcome.output,
                    "output_truncated_bytes": outcome.output_truncated_bytes,
                    "summary": outcome.summary(),
                },
            )
        for order, check in enumerate(result.checks):
            CheckResult.objects.update_or_create(
                submission=submission,
                name=check.name,
                defaults={
                    "order": order,
                    "status": check.status,
                    "score": check.score,
                    "max_score": check.max_score,
                    "required": check.required,
                    "output": check.output,
                    "hint_html": render(check.hint) if check.hint else "",
                },
            )
        now = timezone.now()
        Submission.objects.filter(pk=submission.pk).update(
            status=result.status,
            score=result.score,
            max_score=result.max_score,
            image=image,
            image_digest=digest,
            finished_at=now,
            current_stage="",
            error_message="",
        )
        submission.refresh_from_db()
        if result.status == Submission.Status.PASSED:
            _award_certificate(submission)
        timings = {"intake_s": submission.intake_s, **result.timings}
        submission.result = submission_result_json(submission, timings=timings)
        submission.save(update_fields=["result"])


def _award_certificate(submission: Submission) -> None:
    try:
        from certificates.services import certificate_award_if_complete
    except ImportError:
        return
    certificate_award_if_complete(user=submission.user, course=submission.lab.course)


def submission_result_json(submission: Submission, *, timings: dict | None = None) -> dict:
    """The contract's result document (CONTRACTS.md section 1)."""
    stages = []
    for stage in submission.stage_runs.all():
        if stage.status == StageRun.Status.SKIPPED:
            output = stage.summary
        elif stage.grader:
            output = runner.GRADER_OUTPUT_NOTE
        else:
            output = stage.output
        stages.append(
            {
                "name": stage.name,
                "command": stage.command,
                "exit_code": stage.exit_code,
                "timed_out": stage.timed_out,
                "duration_s": round(stage.duration_s, 3),
                "output": output,
            }
        )
    tests = [
        {
            "name": check.name,
            "status": check.status,
            "score": check.score,
            "max_score": check.max_score,
            "required": check.required,
            "output": check.output,
        }
        for check in submission.check_results.all()
    ]
    started = submission.started_at or submission.created_at
    finished = submission.finished_at or timezone.now()
    previous = (submission.result or {}).get("timings", {}) if timings is None else timings
    return {
        "submission": str(submission.pk),
        "lab": submission.lab.full_slug,
        "status": submission.status,
        "score": submission.score if submission.score is not None else 0.0,
        "max_score": submission.max_score if submission.max_score is not None else submission.lab.max_score,
        "tests": tests,
        "stages": stages,
        "duration_s": round((finished - started).total_seconds(), 3),
        "timings": {
            "intake_s": previous.get("intake_s", submission.intake_s),
            "sandbox_start_s": previous.get("sandbox_start_s", 0.0),
            "teardown_s": previous.get("teardown_s", 0.0),
        },
        "provenance": {
            "image": submission.image or settings.SHIPWRIGHT_LAB_IMAGE,
            "image_digest": submission.image_digest,
            "lab_hash": submission.lab_hash,
            "source_sha256": submission.snapshot_sha256,
            "commit": submission.commit or None,
        },
        "certificate": _certificate_json(submission),
    }


def _certificate_json(submission: Submission) -> dict | None:
    try:
        from certificates.services import certificate_for
    except ImportError:
        return None
    certificate = certificate_for(user=submission.user, course=submission.lab.course)
    if certificate is None:
        return None
    return {"id": certificate.public_id, "url": f"/verify/{certificate.public_id}/"}


def run_id_for(submission: Submission) -> str:
    """The sandbox run id of a submission's current attempt (labels its containers)."""
    return f"{submission.pk.hex[:20]}-{submission.attempts}"


def submissions_reap_stale(*, now=None) -> list[str]:
    """Requeue running submissions whose worker stopped heartbeating (it died), or
    mark them as errors after the last attempt. Returns the ids it acted on. Safe
    to run anywhere, any time: claiming is conditional, so a duplicate message
    does nothing."""
    now = now or timezone.now()
    acted = []
    dead_runs = set()
    stale = Submission.objects.filter(
        status=Submission.Status.RUNNING,
        heartbeat_at__lt=now - timedelta(seconds=budget.STALE_HEARTBEAT_S),
    )
    for submission in stale:
        dead_runs.add(run_id_for(submission))
        if submission.attempts < settings.SHIPWRIGHT_MAX_ATTEMPTS:
            changed = Submission.objects.filter(
                pk=submission.pk, status=Submission.Status.RUNNING, heartbeat_at=submission.heartbeat_at
            ).update(
                status=Submission.Status.QUEUED,
                current_stage="",
                stage_index=0,
                error_message="The grading worker stopped unexpectedly; your submission is being graded again.",
            )
            if changed:
                with transaction.atomic():
                    submission_enqueue(submission)
                acted.append(str(submission.pk))
        else:
            changed = Submission.objects.filter(pk=submission.pk, status=Submission.Status.RUNNING).update(
                status=Submission.Status.ERROR,
                finished_at=now,
                current_stage="",
                error_message=GAVE_UP.format(attempts=submission.attempts),
            )
            if changed:
                submission.refresh_from_db()
                submission.result = submission_result_json(submission)
                submission.save(update_fields=["result"])
                acted.append(str(submission.pk))
    if dead_runs:
        # The dead worker's containers still run (their time limit was enforced by it).
        try:
            reap_leftovers(older_than_s=budget.MAX_HARD_LIMIT_S, run_ids=dead_runs)
        except SandboxError:
            log.warning("could not remove the containers of dead runs %s", sorted(dead_runs))
    return acted
