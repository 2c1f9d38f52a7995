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
import uuid
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

from . import budget, hooks, intake, metrics, notebook_view, runner, storage
from .intake import (
    NOTEBOOK_LAB_NEEDS_NOTEBOOK,
    IntakeError,
    IntakeLimits,
    Snapshot,
    snapshot_from_git,
    snapshot_from_path_or_url,
    snapshot_from_upload,
)
from .models import CheckResult, ExecutedNotebook, ResultHistory, StageRun, Submission
from .sandbox import (
    LABEL_ATTEMPT,
    LABEL_INSTANCE,
    LABEL_SUBMISSION,
    Sandbox,
    SandboxError,
    SandboxUnavailable,
    count_containers,
    image_digest,
    prune_build_cache,
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
TOO_MANY_SUBMISSIONS = (
    "You have made {count} submissions in the last {minutes} minutes. Please wait {seconds} s before submitting again."
)
TOO_MANY_REJECTED = (
    "{count} of your submissions in the last {minutes} minutes were not accepted. "
    "Please wait {seconds} s, and check the lab's instructions for what to submit."
)
INTAKE_SOURCE_GONE = "the source of this submission is no longer available; please submit again"
INTAKE_FAILED = (
    "Your submission could not be checked because of a platform fault (logged for the staff). "
    "This does not count against you; please submit again."
)
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
    """Where intake writes snapshots on this host (see storage.work_dir)."""
    return storage.work_dir()


def submission_check_allowed(*, user, lab: Lab, enforce_limits: bool = True, client_ip: str | None = None) -> None:
    """Raises LabClosed or SubmissionThrottled when `user` (from `client_ip`) may not
    submit to `lab` now: a submission of theirs still in intake or grading (so at
    most one intake per learner at a time), the per-lab cool-off, or too many
    submissions or refused sources in the throttle window, per learner and per
    client address."""
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
    since = timezone.now() - timedelta(seconds=settings.SHIPWRIGHT_THROTTLE_WINDOW_S)
    _throttle_counts(user=user, client_ip=client_ip, since=since)


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
    storage.put_snapshot(snapshot.path)
    with transaction.atomic():
        # Serialise a learner's submissions so two tabs cannot both pass the checks.
        get_user_model().objects.select_for_update().filter(pk=user.pk).first()
        submission_check_allowed(user=user, lab=lab, enforce_limits=enforce_limits)
        Enrollment.objects.get_or_create(user=user, course=lab.course)
        submission = Submission.objects.create(
            status=Submission.Status.QUEUED,
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
    """Create a submission and run its intake now, in this process: the in-process
    caller of the one intake service (`manage.py grade`; the web form and the API use
    `submission_receive` and leave intake to the `intake` queue).

    Raises SourceRejected (intake refused the source: the received row is deleted
    again, so nothing is left), SubmissionThrottled (not with enforce_limits=False)
    or LabClosed. Returns the submission, queued (with `enqueue`, its grading task
    is sent after commit)."""
    submission = submission_receive(
        user=user,
        lab=lab,
        upload=upload,
        upload_name=upload_name,
        git_url=git_url,
        git_ref=git_ref,
        path=path,
        enforce_limits=enforce_limits,
        enqueue=False,
    )
    submission = submission_intake(submission.pk, path=path, enqueue=enqueue) or submission
    if submission.status == Submission.Status.REJECTED:
        message = submission.error_message
        submission.delete()
        raise SourceRejected(message)
    return submission


def _throttle_counts(*, user, client_ip: str | None, since) -> None:
    """Raise SubmissionThrottled when the learner, or the client address, has made
    too many submissions, or too many that intake refused, within the window."""
    window = settings.SHIPWRIGHT_THROTTLE_WINDOW_S
    checks = [
        (Submission.objects.filter(user=user).learner_submitted(), settings.SHIPWRIGHT_SUBMISSIONS_PER_LEARNER, False),
        (
            Submission.objects.filter(user=user, status=Submission.Status.REJECTED),
            settings.SHIPWRIGHT_REJECTED_PER_LEARNER,
            True,
        ),
    ]
    if client_ip:
        checks += [
            (Submission.objects.filter(client_ip=client_ip), settings.SHIPWRIGHT_SUBMISSIONS_PER_ADDRESS, False),
            (
                Submission.objects.filter(client_ip=client_ip, status=Submission.Status.REJECTED),
                settings.SHIPWRIGHT_REJECTED_PER_ADDRESS,
                True,
            ),
        ]
    for rows, limit, rejected in checks:
        if limit <= 0:
            continue
        recent = rows.filter(created_at__gte=since).order_by("-created_at").values_list("created_at", flat=True)
        times = list(recent[:limit])
        if len(times) >= limit:
            # Free again once the oldest of the last `limit` leaves the window.
            wait = int(window - (timezone.now() - times[-1]).total_seconds()) + 1
            template = TOO_MANY_REJECTED if rejected else TOO_MANY_SUBMISSIONS
            message = template.format(count=limit, minutes=max(1, round(window / 60)), seconds=max(wait, 1))
            raise SubmissionThrottled(message, retry_after_s=max(wait, 1))


def submission_receive(
    *,
    user,
    lab: Lab,
    upload: IO[bytes] | UploadedFile | None = None,
    upload_name: str = "",
    git_url: str = "",
    git_ref: str = "",
    path: str | None = None,
    client_ip: str | None = None,
    enforce_limits: bool = True,
    enqueue: bool = True,
) -> Submission:
    """Accept a submission for intake without unpacking or cloning anything: check
    the lab and the throttles, stream an upload into the store (`uploads/<id>`, with
    the upload cap), and create the row as `received`. With `enqueue`, the intake
    task is sent on the intake queue after the transaction commits.

    Exactly one source: an upload, a git URL (+ ref), or a local `path` (the command
    line, which then runs intake itself with the same path). Raises LabClosed,
    SubmissionThrottled, or SourceRejected (the upload is over the cap, or the wrong
    kind of file for the lab: checks that need no unpacking). On any refusal nothing
    is left: no row, no stored upload."""
    sources = sum((upload is not None, bool(git_url), path is not None))
    if sources != 1:
        raise ValueError("give exactly one of upload, git_url, path")
    submission_check_allowed(user=user, lab=lab, enforce_limits=enforce_limits, client_ip=client_ip)
    pk = uuid.uuid4()
    source_name, upload_sha256, upload_size = "", "", 0
    source_kind: str = Submission.SourceKind.DIRECTORY  # a path's real kind is known after intake
    if upload is not None:
        source_name = intake.display_name(upload_name or getattr(upload, "name", "") or "upload")
        try:
            source_kind = intake.upload_kind(source_name, lab_kind=lab.kind)
        except IntakeError as exc:
            raise SourceRejected(exc.message) from exc
        cap = settings.SHIPWRIGHT_UPLOAD_MAX_BYTES
        known = intake.known_size(upload)
        too_big = SourceRejected(
            intake.UPLOAD_TOO_BIG.format(
                size=intake.format_size(known) if known and known > cap else "over " + intake.format_size(cap),
                limit=intake.format_size(cap),
            )
        )
        if known is not None and known > cap:
            raise too_big
        upload_sha256, upload_size = storage.put_stream(storage.upload_name(pk), upload, max_bytes=cap, too_big=too_big)
    elif git_url:
        if lab.kind == Lab.Kind.NOTEBOOK:
            raise SourceRejected(NOTEBOOK_LAB_NEEDS_NOTEBOOK)
        source_name, source_kind = git_url, Submission.SourceKind.GIT
    else:
        assert path is not None
        source_name = path
    try:
        with transaction.atomic():
            # Serialise a learner's submissions so two tabs cannot both pass the checks.
            get_user_model().objects.select_for_update().filter(pk=user.pk).first()
            submission_check_allowed(user=user, lab=lab, enforce_limits=enforce_limits, client_ip=client_ip)
            Enrollment.objects.get_or_create(user=user, course=lab.course)
            submission = Submission.objects.create(
                pk=pk,
                user=user,
                lab=lab,
                status=Submission.Status.RECEIVED,
                source_kind=source_kind,
                source_name=source_name[:500],
                git_url=git_url[:500],
                git_ref=git_ref[:200],
                upload_sha256=upload_sha256,
                snapshot_size=upload_size,
                client_ip=client_ip or None,
                lab_hash=lab.content_hash,
                stage_count=len(lab.spec.get("stages", [])),
            )
            if enqueue:
                submission_intake_enqueue(submission)
    except BaseException:
        if upload_sha256:
            storage.store().delete(storage.upload_name(pk))
        raise
    return submission


def submission_intake_enqueue(submission: Submission) -> None:
    """Send the intake task once the current transaction commits, recording when
    (the reaper re-sends a received submission whose message was lost)."""
    from .tasks import intake_submission

    pk = str(submission.pk)
    now = timezone.now()
    Submission.objects.filter(pk=submission.pk).update(dispatched_at=now, dispatch_due_at=now)
    # Git clones are capped by SHIPWRIGHT_GIT_TIMEOUT_S; the task's limits leave room
    # for the archive work and the store around it.
    soft = settings.SHIPWRIGHT_GIT_TIMEOUT_S + 120
    transaction.on_commit(
        lambda: intake_submission.apply_async(
            args=[pk], queue=settings.SHIPWRIGHT_INTAKE_QUEUE, soft_time_limit=soft, time_limit=soft + 60
        )
    )


def submission_intake(submission_id, *, path: str | None = None, enqueue: bool = True) -> Submission | None:
    """The one intake service: turn a received submission's source (its stored
    upload, its git URL, or `path` for the command line) into a snapshot in the
    store, then move it to `queued` (and, with `enqueue`, send the grading task) or,
    when intake refuses the source, to `rejected` with intake's one-line message.

    Idempotent: only a `received` row is touched, with conditional UPDATEs, so a
    redelivered message (or two workers) does nothing twice; the snapshot is
    content-addressed. Returns the submission, or None when it was not received.
    Raises StoreError when the store cannot be read or written (the task retries)."""
    submission = (
        Submission.objects.select_related("lab").filter(pk=submission_id, status=Submission.Status.RECEIVED).first()
    )
    if submission is None:
        return None
    lab = submission.lab
    limits = intake_limits()
    started = time.monotonic()
    upload = storage.upload_name(submission.pk)
    try:
        if submission.upload_sha256:
            with storage.fetched(upload, submission.upload_sha256) as local:
                with open(local, "rb") as data:
                    snapshot = snapshot_from_upload(
                        data, submission.source_name, lab_kind=lab.kind, dest_dir=storage.work_dir(), limits=limits
                    )
        elif submission.source_kind == Submission.SourceKind.GIT:
            url = f"{submission.git_url}#{submission.git_ref}" if submission.git_ref else submission.git_url
            snapshot = snapshot_from_git(url, dest_dir=storage.work_dir(), limits=limits)
        elif path is not None:
            snapshot = snapshot_from_path_or_url(path, lab_kind=lab.kind, dest_dir=storage.work_dir(), limits=limits)
        else:
            # A command-line submission whose process died before its intake ran.
            raise IntakeError(INTAKE_SOURCE_GONE)
    except IntakeError as exc:
        # No started_at: nothing ran, so it never enters the lab's run-time estimate.
        Submission.objects.filter(pk=submission.pk, status=Submission.Status.RECEIVED).update(
            status=Submission.Status.REJECTED, error_message=exc.message, finished_at=timezone.now()
        )
        _drop_upload(submission, upload)
        submission.refresh_from_db()
        return submission
    storage.put_snapshot(snapshot.path)
    git_url, git_ref = submission.git_url, submission.git_ref
    if path is not None and snapshot.source_kind == "git":
        git_url, _, git_ref = path.partition("#")
    with transaction.atomic():
        moved = Submission.objects.filter(pk=submission.pk, status=Submission.Status.RECEIVED).update(
            status=Submission.Status.QUEUED,
            source_kind=snapshot.source_kind,
            source_name=snapshot.source_name[:500],
            git_url=git_url[:500],
            git_ref=git_ref[:200],
            commit=snapshot.commit or "",
            snapshot_path=snapshot.path.name,
            snapshot_sha256=snapshot.sha256,
            snapshot_size=snapshot.size,
            intake_s=round(time.monotonic() - started, 3),
        )
        submission.refresh_from_db()
        if moved and enqueue:
            submission_enqueue(submission)
    _drop_upload(submission, upload)
    return submission


def submission_intake_failed(submission_id, *, reason: str) -> None:
    """End a received submission whose intake hit a fault of ours (not the learner's
    source, not the store being down): `error`, never a rejection, so it counts
    neither as an attempt nor towards the refused-source throttle; the stored upload
    is removed. Without this the reaper would re-send it for ever."""
    submission = Submission.objects.filter(pk=submission_id, status=Submission.Status.RECEIVED).first()
    if submission is None:
        return
    Submission.objects.filter(pk=submission.pk, status=Submission.Status.RECEIVED).update(
        status=Submission.Status.ERROR,
        error_message=INTAKE_FAILED,
        error_detail=reason[:4000],
        finished_at=timezone.now(),
    )
    _drop_upload(submission, storage.upload_name(submission.pk))


def _drop_upload(submission: Submission, name: str) -> None:
    if submission.upload_sha256:
        storage.store().delete(name)
        storage.drop_cached(name)
        Submission.objects.filter(pk=submission.pk).update(upload_sha256="")


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


def sandbox_runtime_for(spec) -> str:
    """The engine runtime of a lab's stages: the lab's own (runsc) or the site's."""
    return getattr(spec, "runtime", None) or settings.SHIPWRIGHT_SANDBOX_RUNTIME


def sandbox_factory_for(spec) -> Callable[..., Sandbox]:
    """Sandboxes for a lab's runs, with the seccomp profile derived from
    SHIPWRIGHT_SECCOMP_BASE and the lab's runtime."""
    return functools.partial(Sandbox, seccomp_base=settings.SHIPWRIGHT_SECCOMP_BASE, runtime=sandbox_runtime_for(spec))


def lab_assets_for(lab: Lab) -> runner.LabAssets:
    """The lab's starter and hidden files on this host's disk, extracted once per
    content hash (the worker and `lab_check` read them from there)."""
    return runner.lab_assets(
        lab_hash=lab.content_hash,
        starter_zip=bytes(lab.starter_zip),
        hidden_archive=bytes(lab.hidden_archive),
        cache_dir=Path(settings.SHIPWRIGHT_ASSET_CACHE_DIR),
    )


def grading_inputs(lab: Lab, spec, *, image: str, labels: dict[str, str]) -> tuple[str, runner.LabAssets, dict | None]:
    """What every run of a lab's pipeline needs besides the snapshot: the image's
    digest, the lab's assets on this host, and, when a check compares with the
    reference solution, the reference's observations (graded once per lab version and
    image, then cached)."""
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
    return digest, assets, reference


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
            digest, assets, reference = grading_inputs(lab, spec, image=image, labels=labels)
            # From the store, through this host's cache, checked against its SHA-256.
            with storage.fetched(submission.snapshot_path, submission.snapshot_sha256) as snapshot:
                result = runner.run_pipeline(
                    spec=spec,
                    snapshot=snapshot,
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
    except storage.StoreError as exc:
        return _platform_failure(submission, str(exc), kind="store")
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
    told, as for the worker) instead of waiting for a worker that may not exist.
    A pass that completes a course is awarded here too (hooks.grading_in_process)."""
    in_process = hooks.grading_in_process.set(True)
    try:
        for attempt in range(1, attempts + 1):
            outcome = submission_grade(submission_id, worker=worker)
            if not isinstance(outcome, Retry):
                break
            if attempt < attempts:
                log.warning("grading %s: platform error, trying again in this process", submission_id)
                sleep(IN_PROCESS_BACKOFF_S * attempt)
    finally:
        hooks.grading_in_process.reset(in_process)
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


def stage_rows(result: runner.PipelineResult) -> list[dict]:
    """The StageRun fields of each stage of a pipeline result, in order (stored now,
    or kept in a preview's shadow results until it is applied)."""
    return [
        {
            "name": outcome.spec.name,
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
        }
        for outcome in result.outcomes
    ]


def check_rows(result: runner.PipelineResult) -> list[dict]:
    """The CheckResult fields of each check of a pipeline result, in the lab's order."""
    return [
        {
            "name": check.name,
            "status": check.status,
            "score": check.score,
            "max_score": check.max_score,
            "required": check.required,
            "output": check.output,
            "hint_html": render(check.hint) if check.hint else "",
        }
        for check in result.checks
    ]


def submission_results_replace(submission: Submission, *, checks: list[dict], stages: list[dict]) -> None:
    """Make `checks` and `stages` the submission's whole set of check and stage rows
    (call inside the caller's transaction). A regrade's set replaces the old one
    entirely, so a check the lab renamed or removed since leaves no stale row behind.
    Idempotent: running it again with the same rows gives the same rows."""
    submission.stage_runs.all().delete()
    submission.check_results.all().delete()
    StageRun.objects.bulk_create(
        [StageRun(submission=submission, order=order, **row) for order, row in enumerate(stages)]
    )
    CheckResult.objects.bulk_create(
        [CheckResult(submission=submission, order=order, **row) for order, row in enumerate(checks)]
    )


def result_history_record(
    submission: Submission, *, kind: str, status: str, score, max_score, batch=None, by=None
) -> ResultHistory | None:
    """Keep the results a submission had before a regrade replaces them (from its
    stored result document); None when it had none yet (a first grading)."""
    previous = submission.result if isinstance(submission.result, dict) else None
    if previous is None or previous.get("status") not in (
        Submission.Status.PASSED,
        Submission.Status.FAILED,
        Submission.Status.ERROR,
    ):
        return None
    return ResultHistory.objects.create(
        submission=submission,
        kind=kind,
        batch=batch,
        by=by,
        previous_status=previous["status"],
        previous_score=previous.get("score"),
        previous_max_score=previous.get("max_score"),
        previous_checks=[
            {k: test.get(k) for k in ("name", "status", "score", "max_score", "required")}
            for test in previous.get("tests", [])
            if isinstance(test, dict)
        ],
        previous_lab_hash=(previous.get("provenance") or {}).get("lab_hash") or "",
        status=status,
        score=score,
        max_score=max_score,
    )


NOTEBOOK_NOT_SAVED = "The grader kept no executed notebook: it stopped before the first cell ran."


def executed_notebook_fields(result: runner.PipelineResult, *, kind: str) -> dict | None:
    """ExecutedNotebook's fields for a notebook lab's run (None for other labs): the
    notebook stripped and rendered, or a note saying why there is none."""
    if kind != "notebook":
        return None
    if result.executed_notebook is None:
        note = result.executed_notebook_note or NOTEBOOK_NOT_SAVED
        return {"ipynb": "", "html": "", "finished": False, "flagged_cell": None, "flag": "", "note": note}
    try:
        prepared = notebook_view.notebook_prepare(result.executed_notebook)
    except notebook_view.NotebookUnreadable as exc:
        return {"ipynb": "", "html": "", "finished": False, "flagged_cell": None, "flag": "", "note": str(exc)}
    return {
        "ipynb": prepared.ipynb,
        "html": prepared.html,
        "finished": prepared.finished,
        "flagged_cell": prepared.flagged_cell,
        "flag": prepared.flag,
        "note": "",
    }


def _store_result(submission: Submission, result: runner.PipelineResult, *, image: str, digest: str) -> None:
    """Write stage runs, check results and the verdict in one transaction (the rows
    replace any earlier set: see submission_results_replace), keep the earlier
    results of a regraded submission as history, and award a certificate when this
    result completes the course."""
    # Rendered before the transaction: nbconvert on a large notebook takes a while.
    notebook = executed_notebook_fields(result, kind=submission.lab.kind)
    with transaction.atomic():
        if notebook is not None:
            ExecutedNotebook.objects.update_or_create(submission=submission, defaults=notebook)
        result_history_record(
            submission,
            kind=ResultHistory.Kind.REGRADE,
            status=result.status,
            score=result.score,
            max_score=result.max_score,
        )
        submission_results_replace(submission, checks=check_rows(result), stages=stage_rows(result))
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
        for hook in hooks.submission_graded:
            hook(submission)
        timings = {"intake_s": submission.intake_s, **result.timings}
        submission.result = submission_result_json(submission, timings=timings)
        submission.save(update_fields=["result"])


def _award_certificate(submission: Submission) -> None:
    submission_award_certificate(submission)


def submission_award_certificate(submission: Submission) -> None:
    """Tell the apps above grading that `submission` passed (inside the caller's
    transaction): certificates issues one when this completes the course."""
    for hook in hooks.submission_passed:
        hook(submission)


def submission_result_certificate_refresh(*, submission: Submission) -> None:
    """Write the result document's "certificate" entry again, from the hooks: the
    signing worker issues a certificate after the verdict that earned it was stored.
    Touches only that entry of a finished submission's stored document."""
    document = Submission.objects.filter(pk=submission.pk).values_list("result", flat=True).first()
    if not document:
        return
    certificate = _certificate_json(submission)
    if document.get("certificate") != certificate:
        Submission.objects.filter(pk=submission.pk).update(result={**document, "certificate": certificate})


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
    if submission.status in (Submission.Status.QUEUED, Submission.Status.ERROR, Submission.Status.REJECTED):
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
    """Send the task again for queued submissions (grading) and received ones
    (intake) whose message is overdue by `budget.LOST_MESSAGE_S` (due = sent +
    countdown) and, when the broker could be read (`live_ids`: submission ids in its
    queues), is not waiting there: a broker restarted without persistence loses its
    messages, and the learner would otherwise wait for good. A duplicate is
    harmless: grading claims conditionally, intake moves only a received row."""
    now = now or timezone.now()
    overdue = now - timedelta(seconds=budget.LOST_MESSAGE_S)
    # An intake in progress has its message reserved (not in the queue): wait past
    # the intake task's hard limit before sending it again.
    intake_overdue = overdue - timedelta(seconds=settings.SHIPWRIGHT_GIT_TIMEOUT_S + 180)
    queued = Q(status=Submission.Status.QUEUED) & (
        Q(dispatch_due_at__lt=overdue) | Q(dispatch_due_at__isnull=True, created_at__lt=overdue)
    )
    received = Q(status=Submission.Status.RECEIVED) & (
        Q(dispatch_due_at__lt=intake_overdue) | Q(dispatch_due_at__isnull=True, created_at__lt=intake_overdue)
    )
    lost = Submission.objects.select_related("lab").filter(queued | received)
    acted = []
    with transaction.atomic():
        for submission in lost:
            if live_ids is not None and str(submission.pk) in live_ids:
                continue
            if submission.status == Submission.Status.RECEIVED:
                submission_intake_enqueue(submission)
            else:
                submission_enqueue(submission)
            acted.append(str(submission.pk))
        if acted:
            metrics.count(metrics.REAPER_REQUEUES, len(acted), reason="message_lost")
    if acted:
        log.warning("re-sent the task of %d waiting submissions whose message was lost: %s", len(acted), acted)
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
    # The learner build cache: layers no run has made for BUILD_CACHE_MAX_AGE_S go.
    removed += prune_build_cache(older_than_s=budget.BUILD_CACHE_MAX_AGE_S)
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
