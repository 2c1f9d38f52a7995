"""Grading services: every write about submissions goes through here.

`submission_grade` is the one code path that grades: the Celery task calls it, and
so does `manage.py grade` (in-process). It claims the submission with a conditional
UPDATE, so a redelivered message does nothing.
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import UploadedFile
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.mail import mail_send
from config import logcontext
from courses.markdown import render
from courses.models import Enrollment
from labs.models import Lab

from . import budget, hooks, metrics, runner
from .intake import (
    NOTEBOOK_LAB_NEEDS_NOTEBOOK,
    IntakeError,
    IntakeLimits,
    Snapshot,
    snapshot_from_git,
    snapshot_from_path_or_url,
    snapshot_from_upload,
)
from .models import CheckResult, StageRun, Submission
from .sandbox import (
    LABEL_ATTEMPT,
    LABEL_INSTANCE,
    LABEL_SUBMISSION,
    Sandbox,
    SandboxError,
    SandboxUnavailable,
    count_containers,
    image_digest,
    reap_leftovers,
)

log = logging.getLogger(__name__)

ACTIVE_SUBMISSION = "You already have a submission being graded. Wait for its verdict before submitting again."
COOLOFF = "Please wait {seconds} s before submitting this lab again."
LAB_NOT_GRADEABLE = "This lab is not open for grading yet."
GRADING_DELAYED = "Grading is delayed: the grading service is unavailable. Your submission will be graded automatically; it does not count as an attempt."
GAVE_UP = "Grading failed {attempts} times because of a platform problem; the platform's staff have been notified. This does not count against you."
# When no notification could be sent (no staff address, mail down): say only what is true.
GAVE_UP_UNNOTIFIED = "Grading failed {attempts} times because of a platform problem; it has been logged for the platform's staff. This does not count against you."
WORKER_LOST = "The grading worker stopped unexpectedly; your submission is being graded again."
STAFF_ALERT_SUBJECT = "A submission ended in a platform error"
JUDGING_FAILED = "Your work ran, but the grader failed while judging it (a platform fault, logged for the staff). This is not a verdict on your work."


class SubmissionRejected(Exception):
    """A submission that may not be created now; str() is shown to the learner as is.

    Callers map the subclass, never the words, to their response: the web form shows
    the message, the API answers 400 (SourceRejected, LabClosed) or 429
    (SubmissionThrottled, with Retry-After), and `manage.py grade` exits 2."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SourceRejected(SubmissionRejected):
    """The upload, URL or path failed intake (size, archive rules, git policy)."""


class SubmissionThrottled(SubmissionRejected):
    """The learner must wait: a submission still being graded, or the cool-off."""

    def __init__(self, message: str, *, retry_after_s: int | None = None, active: Submission | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s  # None when no honest estimate exists
        self.active = active  # the submission still being graded, for a link to it


class LabClosed(SubmissionRejected):
    """The lab has no stages and checks to grade yet."""


@dataclass(frozen=True)
class Retry:
    countdown_s: float


class Superseded(Exception):
    """This attempt no longer owns the submission (the reaper requeued it and another
    attempt claimed it): its writes are dropped."""


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
    """Raises LabClosed or SubmissionThrottled when `user` may not submit to `lab` now."""
    if not lab.gradeable:
        raise LabClosed(LAB_NOT_GRADEABLE)
    if not enforce_limits:
        return
    # Staff regrades are left out: they drain on the low queue, and a learner waiting
    # behind them could not submit at all. The learner's new submission and the regrade
    # of an old one may then run side by side; both are graded, each once.
    active = Submission.objects.filter(user=user).active().learner_submitted().order_by("-created_at").first()
    if active is not None:
        # No retry-after: how long the running one takes is not known here.
        raise SubmissionThrottled(ACTIVE_SUBMISSION, active=active)
    cooloff = settings.SHIPWRIGHT_RESUBMIT_COOLOFF_S
    if cooloff > 0:
        last = Submission.objects.filter(user=user, lab=lab).order_by("-created_at").first()
        if last is not None:
            wait = cooloff - (timezone.now() - last.created_at).total_seconds()
            if wait > 0:
                seconds = int(wait) + 1
                raise SubmissionThrottled(COOLOFF.format(seconds=seconds), retry_after_s=seconds)


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


def submission_create_from_source(
    *,
    user,
    lab: Lab,
    upload: IO[bytes] | UploadedFile | None = None,
    upload_name: str = "",
    git_url: str = "",
    git_ref: str = "",
    path: str | None = None,
    enforce_limits: bool = True,
    enqueue: bool = True,
) -> Submission:
    """Create a submission of `lab` for `user` from exactly one source: an uploaded file
    (web form, API; `upload_name` defaults to its `.name`), a git URL and ref, or a
    `path` (`manage.py grade`: a directory, archive, notebook or https:// git URL).

    The one intake path for every entry point, so the limits, throttles and messages
    are the same everywhere. Side effects, in order: the throttles are checked (no
    intake work when the learner must wait anyway); the source is snapshotted to
    `<SHIPWRIGHT_SNAPSHOT_DIR>/<sha256>.tar.gz`; a Submission row is created (and the
    learner enrolled) in one transaction that re-checks the throttles under a lock on
    the user; with `enqueue` the grading task is sent after that transaction commits.

    Raises SourceRejected (intake refused the source), SubmissionThrottled (a
    submission still running, or the cool-off; not with enforce_limits=False) or
    LabClosed. On any rejection no row is written and no snapshot file is left: intake
    cleans up after itself, and a snapshot this call wrote is deleted if the row is
    then refused. A snapshot that already existed (the same bytes, submitted before)
    is kept, because other submissions may refer to it.
    """
    sources = sum((upload is not None, bool(git_url), path is not None))
    if sources != 1:
        raise ValueError("give exactly one of upload, git_url, path")
    submission_check_allowed(user=user, lab=lab, enforce_limits=enforce_limits)
    started = time.monotonic()
    try:
        if upload is not None:
            snapshot = snapshot_from_upload(
                upload,
                upload_name or getattr(upload, "name", "") or "upload",
                lab_kind=lab.kind,
                dest_dir=snapshot_dir(),
                limits=intake_limits(),
            )
        elif git_url:
            if lab.kind == Lab.Kind.NOTEBOOK:
                raise IntakeError(NOTEBOOK_LAB_NEEDS_NOTEBOOK)
            url = f"{git_url}#{git_ref}" if git_ref else git_url
            snapshot = snapshot_from_git(url, dest_dir=snapshot_dir(), limits=intake_limits())
        else:
            assert path is not None
            snapshot = snapshot_from_path_or_url(
                path, lab_kind=lab.kind, dest_dir=snapshot_dir(), limits=intake_limits()
            )
            if snapshot.source_kind == "git":
                git_url, _, git_ref = path.partition("#")
    except IntakeError as exc:
        raise SourceRejected(exc.message) from exc
    intake_s = time.monotonic() - started
    try:
        return submission_create(
            user=user,
            lab=lab,
            snapshot=snapshot,
            git_url=git_url,
            git_ref=git_ref,
            intake_s=intake_s,
            enqueue=enqueue,
            enforce_limits=enforce_limits,
        )
    except BaseException:
        # The row was refused (a race the first check could not see) or not written:
        # drop the file this call wrote, unless a row already refers to the same bytes.
        # (Two identical intakes racing within the same instant could both claim to
        # have written it; the retention sweep's reference check covers that case.)
        if snapshot.created and not Submission.objects.filter(snapshot_path=snapshot.path.name).exists():
            snapshot.path.unlink(missing_ok=True)
        raise


def submission_enqueue(submission: Submission, *, countdown_s: float = 0) -> None:
    """Send the grading task once the current transaction commits, and record when
    it was sent and when it is due (now + countdown), so the reaper can tell a lost
    message (a broker restarted without persistence) from one still waiting."""
    from .tasks import grade_submission

    spec = submission.lab.parsed_spec
    limits = budget.grading_budget(spec)
    queue = settings.SHIPWRIGHT_LOW_QUEUE if submission.low_priority else settings.SHIPWRIGHT_GRADING_QUEUE
    pk = str(submission.pk)
    now = timezone.now()
    Submission.objects.filter(pk=submission.pk).update(
        dispatched_at=now, dispatch_due_at=now + timedelta(seconds=countdown_s)
    )
    # After commit: a worker that took the message first would not find the row.
    transaction.on_commit(
        lambda: grade_submission.apply_async(
            args=[pk],
            queue=queue,
            countdown=countdown_s or None,
            soft_time_limit=limits.soft_s,
            time_limit=limits.hard_s,
        )
    )


def submission_regrade(*, submission: Submission) -> bool:
    """Grade the same immutable snapshot again, on the low-priority queue.

    Only a finished submission whose snapshot is still kept is regraded; returns
    whether it was queued. A queued or running submission is left alone: it will be
    graded against the lab as it is now anyway, and flagging a learner's own pending
    submission as a regrade would move it to the slow queue and free the learner's
    active slot behind their back. Idempotent: a second call finds it queued and
    does nothing. A certificate already issued is never revoked by a regrade.
    """
    with transaction.atomic():
        updated = (
            Submission.objects.regradable()
            .filter(pk=submission.pk)
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
    return bool(updated)


def submissions_regrade(*, lab: Lab) -> int:
    """Regrade every regradable submission of `lab` (see submission_regrade); returns
    how many were queued. Meant for a background task: each submission is its own
    small transaction, so learners' submissions are never held up behind it, and a
    rerun after a crash queues only what is not queued yet."""
    queued = 0
    ids = list(Submission.objects.filter(lab=lab).regradable().order_by("created_at").values_list("pk", flat=True))
    for submission in Submission.objects.filter(pk__in=ids).select_related("lab").iterator(chunk_size=200):
        queued += submission_regrade(submission=submission)
    log.info("regrade of %s: %d submission(s) queued", lab.full_slug, queued)
    return queued


def submission_claim(*, submission_id, worker: str) -> int | None:
    """Move a queued submission to running and return the claim's attempt number;
    None if someone else has it (or it is done). Every later write of this run is
    fenced by that number (see `_claimed`)."""
    now = timezone.now()
    with transaction.atomic():
        # Row lock: two workers given the same message read and bump `attempts` in turn.
        row = (
            Submission.objects.select_for_update()
            .filter(pk=submission_id, status=Submission.Status.QUEUED)
            .values_list("attempts", "dispatch_due_at", "created_at", "lab__slug", "lab__course__slug")
            .first()
        )
        if row is None:
            return None
        attempts, due, created, lab_slug, course_slug = row
        fresh = attempts == 0  # a new submission or a regrade: its clocks start now
        claimed = Submission.objects.filter(
            pk=submission_id, status=Submission.Status.QUEUED, attempts=attempts
        ).update(
            status=Submission.Status.RUNNING,
            attempts=attempts + 1,
            started_at=now if fresh else Coalesce(F("started_at"), Value(now)),
            platform_errors=0 if fresh else F("platform_errors"),
            heartbeat_at=now,
            claimed_by=worker[:200],
            error_message="",
        )
        if claimed:
            waited = max(0.0, (now - (due or created)).total_seconds())
            metrics.observe(metrics.QUEUE_WAIT, waited, lab=f"{course_slug}/{lab_slug}")
    return attempts + 1 if claimed else None


def _claimed(submission_id, attempt: int):
    """The submission, only while `attempt` is its current running claim: a run the
    reaper requeued (and another worker claimed) can no longer write anything."""
    return Submission.objects.filter(pk=submission_id, status=Submission.Status.RUNNING, attempts=attempt)


def _reset_connection() -> None:
    """Drop this thread's database connection if it is broken (the server killed
    the backend, a failover): Django reconnects on the next query."""
    if connection.connection is None:
        return
    try:
        usable = connection.is_usable()
    except Exception:
        usable = False
    if not usable:
        try:
            connection.close()
        except DatabaseError:
            connection.connection = None


def _db_retrying(write, what: str):
    """Run an idempotent write; after a broken connection, reconnect and try once more."""
    try:
        return write()
    except (OperationalError, InterfaceError) as exc:
        log.warning("%s: database connection lost (%s); reconnecting", what, exc)
        _reset_connection()
        return write()


class _Heartbeat:
    """Touches `heartbeat_at` while a run is in progress, from its own thread and
    database connection, so the reaper can tell a slow run from a dead worker.

    It survives database errors (a killed backend, a restart): it logs, drops the
    broken connection and beats again on the next tick. It stops when its claim is
    superseded."""

    def __init__(self, submission_id, attempt: int):
        self.submission_id = submission_id
        self.attempt = attempt
        self._stop = threading.Event()
        # In the caller's context: its log lines name the submission too.
        context = contextvars.copy_context()
        self._thread = threading.Thread(target=lambda: context.run(self._loop), daemon=True, name="grading-heartbeat")

    def _loop(self) -> None:
        try:
            while not self._stop.wait(budget.HEARTBEAT_INTERVAL_S):
                try:
                    alive = _claimed(self.submission_id, self.attempt).update(heartbeat_at=timezone.now())
                except Exception as exc:
                    # A dead heartbeat makes the reaper kill a live run: never let it die.
                    log.warning("grading %s: heartbeat failed (%s); reconnecting", self.submission_id, exc)
                    _reset_connection()
                    continue
                if not alive:
                    log.warning("grading %s: attempt %s was superseded", self.submission_id, self.attempt)
                    return
        finally:
            try:
                connection.close()
            except DatabaseError:
                pass

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def sandbox_factory_for(spec) -> Callable[..., Sandbox]:
    """Sandboxes for a lab's runs, with the seccomp profile derived from
    SHIPWRIGHT_SECCOMP_BASE."""
    return functools.partial(Sandbox, seccomp_base=settings.SHIPWRIGHT_SECCOMP_BASE)


def lab_assets_for(lab: Lab) -> runner.LabAssets:
    """The lab's starter and hidden files on this host's disk, extracted once per
    content hash (the worker and `lab_check` read them from there)."""
    return runner.lab_assets(
        lab_hash=lab.content_hash,
        starter_zip=bytes(lab.starter_zip),
        hidden_archive=bytes(lab.hidden_archive),
        cache_dir=Path(settings.SHIPWRIGHT_ASSET_CACHE_DIR),
    )


def submission_grade(submission_id, *, worker: str | None = None) -> Submission | Retry | None:
    """Claim and grade one submission (see `_submission_grade`); every log line of
    the run names the submission."""
    with logcontext.submission(submission_id):
        return _submission_grade(submission_id, worker=worker)


def _submission_grade(submission_id, *, worker: str | None = None) -> Submission | Retry | None:
    """Claim and grade one submission; idempotent.

    Returns the finished submission; None when it was not claimable (already
    claimed or finished: a redelivered message) or when this attempt was superseded
    (the reaper requeued it meanwhile); Retry when the platform failed (engine
    unreachable, image missing) and the retry budget remains: the submission is back
    in the queue with a "grading is delayed" note, not charged to the learner.
    """
    worker = worker or f"{socket.gethostname()}:{threading.get_ident()}"
    attempt = submission_claim(submission_id=submission_id, worker=worker)
    if attempt is None:
        return None
    submission = _claimed(submission_id, attempt).select_related("lab", "lab__course", "user").first()
    if submission is None:
        return None
    lab = submission.lab
    spec = lab.parsed_spec
    image = spec.image or settings.SHIPWRIGHT_LAB_IMAGE
    run_id = run_id_for(submission)
    labels = sandbox_labels(submission)

    log.info("grading %s: claimed by %s (attempt %d) for %s", submission.pk, worker, attempt, lab.full_slug)

    def on_stage(index: int, stage, limit_s: float) -> None:
        log.info("grading %s: stage %d: %s (limit %.0f s)", submission.pk, index + 1, stage.name, limit_s)

        def write() -> int:
            return _claimed(submission.pk, attempt).update(
                current_stage=stage.name,
                stage_index=index + 1,
                stage_started_at=timezone.now(),
                stage_limit_s=limit_s,
                heartbeat_at=timezone.now(),
            )

        try:
            _db_retrying(write, f"grading {submission.pk}: progress")
        except DatabaseError:
            # Progress is for the page only; the heartbeat thread keeps the claim alive.
            log.warning("grading %s: could not record the start of stage %s", submission.pk, stage.name)

    try:
        with _Heartbeat(submission.pk, attempt):
            digest = image_digest(image)
            assets = lab_assets_for(lab)
            reference = None
            if runner.needs_reference(spec):
                reference = runner.reference_observations(
                    spec=spec,
                    assets=assets,
                    image=image,
                    image_digest=digest,
                    snapshot_dir=snapshot_dir(),
                    labels=labels,
                    sandbox_factory=sandbox_factory_for(spec),
                )
            result = runner.run_pipeline(
                spec=spec,
                snapshot=snapshot_dir() / submission.snapshot_path,
                assets=assets,
                image=image,
                run_id=run_id,
                reference=reference,
                on_stage=on_stage,
                labels=labels,
                sandbox_factory=sandbox_factory_for(spec),
            )
    except SandboxUnavailable as exc:
        return _platform_failure(submission, str(exc), kind="sandbox")
    except runner.JudgingError as exc:
        # Every stage ran and judging their evidence failed. Judging is deterministic, so
        # a retry would re-run the whole pipeline only to fail the same way: end now,
        # as the platform's error (never the learner's), and tell the staff.
        log.exception("grading %s failed while judging", submission.pk)
        metrics.count(metrics.PLATFORM_ERRORS, kind="judging")
        return _give_up(
            submission,
            reason=f"judging failed: {exc.__cause__ or exc}",
            tries=1,
            fence=_claimed(submission.pk, attempt),
            message=JUDGING_FAILED,
        )
    except Exception as exc:
        # A fault of ours (or a soft time limit): never the learner's failure.
        log.exception("grading %s failed inside the platform", submission.pk)
        return _platform_failure(submission, f"internal error: {type(exc).__name__}: {exc}", kind="internal")
    try:
        _db_retrying(lambda: _store_result(submission, result, image=image, digest=digest), f"grading {submission.pk}")
    except Superseded:
        log.warning("grading %s: attempt %s was superseded; its result is dropped", submission.pk, attempt)
        return None
    submission.refresh_from_db()
    log.info("grading %s: %s, score %s of %s", submission.pk, submission.status, submission.score, submission.max_score)
    if submission.status == Submission.Status.ERROR:
        # A judge failed on one check (grading.judges' safety net): the verdicts are
        # stored, the learner is not charged, and the staff are told.
        failed = [check.name for check in result.checks if check.status == Submission.Status.ERROR]
        reason = f"judging failed on {', '.join(failed)}"
        Submission.objects.filter(pk=submission.pk).update(error_message=JUDGING_FAILED, error_detail=reason)
        log.error("grading %s: %s", submission.pk, reason)
        metrics.count(metrics.PLATFORM_ERRORS, kind="judging")
        _notify_staff(submission, reason=reason, tries=1)
        submission.refresh_from_db()
    return submission


# `manage.py grade` grades in its own process and hands nothing to a broker: it
# retries a platform failure itself, briefly (an operator is waiting at a prompt).
IN_PROCESS_ATTEMPTS = 3
IN_PROCESS_BACKOFF_S = 3.0


def submission_grade_in_process(
    submission_id, *, worker: str, attempts: int = IN_PROCESS_ATTEMPTS, sleep=time.sleep
) -> Submission:
    """Grade a queued submission now, in this process (`manage.py grade`), through
    `submission_grade`. A platform failure is retried here, `attempts` times in all
    with a short backoff; if it persists the submission ends in `error` (staff are
    told, as for the worker) instead of waiting for a worker that may not exist."""
    for attempt in range(1, attempts + 1):
        outcome = submission_grade(submission_id, worker=worker)
        if not isinstance(outcome, Retry):
            break
        if attempt < attempts:
            log.warning("grading %s: platform error, trying again in this process", submission_id)
            sleep(IN_PROCESS_BACKOFF_S * attempt)
    submission = Submission.objects.get(pk=submission_id)
    if submission.status == Submission.Status.QUEUED:
        _give_up(
            submission,
            reason=submission.error_detail or "the platform could not grade",
            tries=submission.platform_errors,
            fence=Submission.objects.filter(pk=submission.pk, status=Submission.Status.QUEUED),
        )
        submission.refresh_from_db()
    return submission


def submission_retry(*, submission_id, countdown_s: float) -> None:
    """Send a grading task again after a platform failure (see `submission_grade`)."""
    submission = Submission.objects.select_related("lab").filter(pk=submission_id).first()
    if submission is not None and submission.status == Submission.Status.QUEUED:
        submission_enqueue(submission, countdown_s=countdown_s)


def _platform_failure(submission: Submission, reason: str, *, kind: str) -> Submission | Retry | None:
    """Requeue after a platform failure with backoff, or give up once the retry
    budget (SHIPWRIGHT_PLATFORM_RETRIES, about 20 minutes by default) is spent. The
    learner sees a friendly text; the raw reason goes to the log and `error_detail`."""
    log.warning("grading %s: platform error: %s", submission.pk, reason)
    _reset_connection()  # the failure may have been the database itself
    metrics.count(metrics.PLATFORM_ERRORS, kind=kind)
    attempt = submission.attempts
    failures = submission.platform_errors + 1
    if failures <= settings.SHIPWRIGHT_PLATFORM_RETRIES:
        countdown = budget.platform_backoff_s(failures)
        requeued = _db_retrying(
            lambda: _claimed(submission.pk, attempt).update(
                status=Submission.Status.QUEUED,
                error_message=GRADING_DELAYED,
                error_detail=reason[:4000],
                platform_errors=failures,
                current_stage="",
                stage_index=0,
            ),
            f"grading {submission.pk}: requeue",
        )
        return Retry(countdown_s=countdown) if requeued else None
    return _give_up(submission, reason=reason, tries=failures, fence=_claimed(submission.pk, attempt))


def _give_up(
    submission: Submission, *, reason: str, tries: int, fence, message: str | None = None
) -> Submission | None:
    """End a submission in `error` (only if `fence` still matches it), log it and
    tell the staff; the learner's message (GAVE_UP unless `message` is given) says
    whether anyone was told."""
    now = timezone.now()
    changed = _db_retrying(
        lambda: fence.update(
            status=Submission.Status.ERROR,
            error_message=message or GAVE_UP.format(attempts=tries),
            error_detail=reason[:4000],
            finished_at=now,
            current_stage="",
        ),
        f"grading {submission.pk}: give up",
    )
    if not changed:
        return None
    log.error("grading %s ended in a platform error after %s tries: %s", submission.pk, tries, reason)
    metrics.count(metrics.PLATFORM_ERRORS, kind="gave_up")
    metrics.count(metrics.VERDICTS, lab=submission.lab.full_slug, verdict=Submission.Status.ERROR)
    if not _notify_staff(submission, reason=reason, tries=tries) and message is None:
        Submission.objects.filter(pk=submission.pk).update(error_message=GAVE_UP_UNNOTIFIED.format(attempts=tries))
    submission.refresh_from_db()
    submission.result = submission_result_json(submission)
    submission.save(update_fields=["result"])
    return submission


def _notify_staff(submission: Submission, *, reason: str, tries: int) -> bool:
    """E-mail the site's ADMINS and active staff users; False if nobody could be told."""
    staff = get_user_model().objects.filter(is_staff=True, is_active=True).exclude(email="")
    recipients = sorted({email for _, email in settings.ADMINS} | set(staff.values_list("email", flat=True)))
    if not recipients:
        log.error("grading %s: no ADMINS or staff e-mail address to notify", submission.pk)
        return False
    body = (
        f"Submission {submission.pk} ({submission.lab.full_slug}, learner {submission.user}) ended in a "
        f"platform error after {tries} tries.\n\nLast reason: {reason}\n\n"
        "The learner was not charged. Once the platform is healthy, regrade it from the lab's submissions page."
    )
    try:
        mail_send(to=recipients, subject=STAFF_ALERT_SUBJECT, text=body)
    except Exception:
        log.exception("grading %s: could not e-mail the staff", submission.pk)
        return False
    return True


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
        # Fenced by the claim: a superseded attempt's verdict rolls back with its rows.
        if not Submission.objects.filter(
            pk=submission.pk, status=Submission.Status.RUNNING, attempts=submission.attempts
        ).update(
            status=result.status,
            score=result.score,
            max_score=result.max_score,
            image=image,
            image_digest=digest,
            finished_at=now,
            current_stage="",
            error_message="",
        ):
            raise Superseded(submission.pk)
        submission.refresh_from_db()
        lab_slug = submission.lab.full_slug
        metrics.count(metrics.VERDICTS, lab=lab_slug, verdict=submission.status)
        for outcome in result.outcomes:
            if outcome.status != "skipped":
                metrics.observe(metrics.STAGE_DURATION, outcome.duration_s, lab=lab_slug, stage=outcome.spec.name)
        if submission.started_at:
            metrics.observe(metrics.RUN_DURATION, (now - submission.started_at).total_seconds(), lab=lab_slug)
        if result.status == Submission.Status.PASSED:
            _award_certificate(submission)
        timings = {"intake_s": submission.intake_s, **result.timings}
        submission.result = submission_result_json(submission, timings=timings)
        submission.save(update_fields=["result"])


def _award_certificate(submission: Submission) -> None:
    for hook in hooks.submission_passed:
        hook(submission)


def submission_result_json(submission: Submission, *, timings: dict | None = None) -> dict:
    """The contract's result document (docs/contracts.md section 1)."""
    stages = [
        {
            "name": stage.name,
            "command": stage.command,
            "exit_code": stage.exit_code,
            "timed_out": stage.timed_out,
            "duration_s": round(stage.duration_s, 3),
            "output": _stage_output(stage),
        }
        for stage in submission.stage_runs.all()
    ]
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


def submission_status_detail(submission: Submission) -> str:
    """Why a submission is where it is, in words for the learner (never raw engine
    text: that stays in `error_detail` and the logs); empty when there is nothing to say."""
    if submission.status == Submission.Status.RUNNING and submission.worker_lost:
        return submission.worker_lost_note
    if submission.status in (Submission.Status.QUEUED, Submission.Status.ERROR):
        return submission.error_message
    return ""


def _stage_output(stage: StageRun) -> str:
    """A stage's `output` as the contract shows it (grader-owned output is never shown)."""
    if stage.status == StageRun.Status.SKIPPED:
        return stage.summary
    if stage.grader:
        return runner.GRADER_OUTPUT_NOTE
    return stage.output


def submission_result_document(submission: Submission) -> dict:
    """The contract's result document as served to every reader (API, `manage.py
    grade`, the data export). A finished submission's stored document holds no stage
    output (see Submission.save); it is filled in here from the StageRun rows, so
    readers see exactly the contract's JSON. Unfinished: built from the rows now."""
    if not (submission.finished and submission.result):
        return submission_result_json(submission)
    outputs = {stage.name: _stage_output(stage) for stage in submission.stage_runs.all()}
    document = dict(submission.result)
    document["stages"] = [
        {**stage, "output": outputs.get(str(stage.get("name")), stage.get("output", ""))}
        if isinstance(stage, dict)
        else stage
        for stage in document.get("stages", [])
    ]
    return document


def _certificate_json(submission: Submission) -> dict | None:
    for hook in hooks.result_certificate:
        document = hook(submission)
        if document is not None:
            return document
    return None


def run_id_for(submission: Submission) -> str:
    """The sandbox run id of a submission's current attempt (labels its containers)."""
    return f"{submission.pk.hex[:20]}-{submission.attempts}"


def sandbox_instance() -> str:
    """Names this deployment (its database) on sandbox labels, so the orphan sweep
    never touches another deployment's (or test run's) objects on a shared engine."""
    db = connection.settings_dict
    key = f"{db.get('HOST') or ''}:{db.get('PORT') or ''}/{db.get('NAME') or ''}"
    return settings.SHIPWRIGHT_SANDBOX_INSTANCE or hashlib.sha256(key.encode()).hexdigest()[:16]


def sandbox_labels(submission: Submission) -> dict[str, str]:
    """Labels on every sandbox object of the submission's current attempt (its own
    run and any reference run it triggers): the reaper removes what no live claim owns."""
    return {
        LABEL_SUBMISSION: str(submission.pk),
        LABEL_ATTEMPT: str(submission.attempts),
        LABEL_INSTANCE: sandbox_instance(),
    }


def submissions_reap_stale(*, now=None) -> list[str]:
    """Requeue running submissions whose worker stopped heartbeating (it died), or
    mark them as errors once SHIPWRIGHT_MAX_ATTEMPTS runs died. Returns the ids it
    acted on. Safe to run anywhere, any time: claiming is conditional, so a
    duplicate message does nothing."""
    now = now or timezone.now()
    acted = []
    dead_runs = set()
    stale = Submission.objects.select_related("lab", "user").filter(
        status=Submission.Status.RUNNING,
        heartbeat_at__lt=now - timedelta(seconds=budget.STALE_HEARTBEAT_S),
    )
    for submission in stale:
        dead_runs.add(run_id_for(submission))
        fence = Submission.objects.filter(
            pk=submission.pk,
            status=Submission.Status.RUNNING,
            attempts=submission.attempts,
            heartbeat_at=submission.heartbeat_at,
        )
        # Platform failures have their own budget: only the runs that died count here.
        deaths = submission.attempts - submission.platform_errors
        if deaths < settings.SHIPWRIGHT_MAX_ATTEMPTS:
            with transaction.atomic():
                changed = fence.update(
                    status=Submission.Status.QUEUED, current_stage="", stage_index=0, error_message=WORKER_LOST
                )
                if changed:
                    submission_enqueue(submission)
                    metrics.count(metrics.REAPER_REQUEUES, reason="worker_lost")
            if changed:
                log.warning(
                    "grading %s: worker %s stopped heartbeating; requeued", submission.pk, submission.claimed_by
                )
                acted.append(str(submission.pk))
        elif _give_up(submission, reason=f"the worker died {deaths} times", tries=deaths, fence=fence):
            acted.append(str(submission.pk))
    if dead_runs:
        # The dead worker's containers still run (their time limit was enforced by it).
        try:
            reap_leftovers(older_than_s=budget.MAX_HARD_LIMIT_S, run_ids=dead_runs)
        except SandboxError:
            log.warning("could not remove the containers of dead runs %s", sorted(dead_runs))
    return acted


def submissions_redispatch_lost(*, live_ids: set[str] | None = None, now=None) -> list[str]:
    """Send the grading task again for queued submissions whose message is overdue
    by `budget.LOST_MESSAGE_S` (due = sent + countdown) and, when the broker could
    be read (`live_ids`: submission ids in its queues), is not waiting there: a
    broker restarted without persistence loses its messages, and the learner
    would otherwise wait for good. A duplicate is harmless: the claim is conditional."""
    now = now or timezone.now()
    overdue = now - timedelta(seconds=budget.LOST_MESSAGE_S)
    queued = Submission.objects.select_related("lab").filter(status=Submission.Status.QUEUED)
    lost = queued.filter(Q(dispatch_due_at__lt=overdue) | Q(dispatch_due_at__isnull=True, created_at__lt=overdue))
    acted = []
    with transaction.atomic():
        for submission in lost:
            if live_ids is not None and str(submission.pk) in live_ids:
                continue
            submission_enqueue(submission)
            acted.append(str(submission.pk))
        if acted:
            metrics.count(metrics.REAPER_REQUEUES, len(acted), reason="message_lost")
    if acted:
        log.warning("re-sent the grading task of %d queued submissions whose message was lost: %s", len(acted), acted)
    return acted


def sandboxes_reap_orphans() -> int:
    """Remove this deployment's sandbox objects that no live claim owns (a reference
    run, an earlier attempt of a retried run, a dead worker's run), once they are
    older than `budget.ORPHAN_GRACE_S`; and anything older than the longest run."""
    live = {
        (str(pk), str(attempts))
        for pk, attempts in Submission.objects.filter(status=Submission.Status.RUNNING).values_list("pk", "attempts")
    }
    removed = reap_leftovers(
        older_than_s=budget.MAX_HARD_LIMIT_S,
        orphans_of=sandbox_instance(),
        live_claims=live,
        orphan_grace_s=budget.ORPHAN_GRACE_S,
    )
    if removed:
        metrics.count(metrics.REAPER_REMOVED, removed)
    sandboxes_report()
    return removed


def sandboxes_report() -> None:
    """Record how many of this deployment's sandbox containers live on this host's
    engine (the `/metrics` gauge per grading host); quiet when the engine is down."""
    try:
        metrics.set_gauge(metrics.SANDBOXES, count_containers(instance=sandbox_instance()), host=metrics.host())
    except SandboxError as exc:
        log.info("could not count sandbox containers: %s", exc)
