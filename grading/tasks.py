"""Celery adapters: take primary keys, call a service."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from celery import shared_task
from django.conf import settings

from . import services

log = logging.getLogger(__name__)

_UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@shared_task(bind=True, name="grading.grade_submission", acks_late=True, max_retries=None)
def grade_submission(self, submission_id: str) -> None:
    """Grade one submission. Idempotent: a redelivered message finds it claimed
    or finished and does nothing. Platform errors send the task again with a
    countdown (through `submission_enqueue`, which records when it is due)."""
    outcome = services.submission_grade(submission_id, worker=self.request.hostname or "worker")
    if isinstance(outcome, services.Retry):
        services.submission_retry(submission_id=submission_id, countdown_s=outcome.countdown_s)
    if outcome is not None:
        services.sandboxes_report()  # after the verdict: the learner does not wait for it


@shared_task(
    bind=True,
    name="grading.intake_submission",
    acks_late=True,
    max_retries=8,
)
def intake_submission(self, submission_id: str) -> None:
    """Run intake for a received submission (unpack or clone, snapshot, store) and
    queue it for grading, or mark it rejected with intake's message. Idempotent: a
    redelivered message finds it no longer received and does nothing. A store that
    cannot be reached is a platform failure: retried with backoff."""
    from .storage import StoreError

    try:
        services.submission_intake(submission_id)
    except StoreError as exc:
        log.warning("intake %s: store unavailable (%s); retrying", submission_id, exc)
        raise self.retry(countdown=min(10 * 2**self.request.retries, 300)) from exc
    except Exception as exc:
        log.exception("intake %s failed inside the platform", submission_id)
        services.submission_intake_failed(submission_id, reason=f"intake: {type(exc).__name__}: {exc}")


@shared_task(name="grading.reap_stale_submissions")
def reap_stale_submissions() -> list[str]:
    """Runs on the maintenance queue (a grading backlog cannot starve it): requeue
    submissions whose worker died, re-send those whose broker message was lost, and
    remove sandbox objects no live claim owns; issue certificates pending a key."""
    from .sandbox import SandboxError

    acted = services.submissions_reap_stale()
    acted += services.submissions_redispatch_lost(live_ids=_queued_submission_ids())
    try:
        services.sandboxes_reap_orphans()
    except SandboxError as exc:
        log.warning("could not reap leftover sandboxes: %s", exc)
    from .worker_registry import workers_forget_gone

    workers_forget_gone()
    # Apps above grading (certificates: issue those earned while no signing key was
    # usable) do their periodic work here.
    from .hooks import maintenance

    for hook in maintenance:
        hook()
    return acted


def _queued_submission_ids() -> set[str] | None:
    """Submission ids with a message waiting in the grading queues, or None when the
    broker cannot be read (then only the overdue time decides). Messages a worker
    has reserved are not counted: a dead worker's would come back only after the
    visibility timeout, and a live worker's run on time (a duplicate is harmless)."""
    from config.celery import app

    queues = [settings.SHIPWRIGHT_GRADING_QUEUE, settings.SHIPWRIGHT_LOW_QUEUE, settings.SHIPWRIGHT_INTAKE_QUEUE]
    try:
        with app.connection_for_read() as conn:
            transport = conn.transport.driver_type
            if transport == "redis":
                client = conn.default_channel.client
                texts = [raw.decode("utf-8", "replace") for q in queues for raw in client.lrange(q, 0, -1)]
            elif transport == "filesystem":
                folder = Path(conn.transport_options["data_folder_in"])
                texts = [p.read_text("utf-8", "replace") for q in queues for p in folder.glob(f"*.{q}.msg")]
            else:
                return None
    except Exception as exc:
        log.warning("could not read the broker's queues: %s", exc)
        return None
    ids: set[str] = set()
    for text in texts:
        ids.update(_UUID_RE.findall(text))
    return ids


@shared_task(name="grading.regrade_lab", acks_late=True)
def regrade_lab(lab_id: int) -> int:
    """Queue every finished submission of a lab for regrading (the instructor's
    "Regrade all"). Runs on the low queue, never in the request. Idempotent: a
    redelivered message finds them queued already and queues nothing twice."""
    from labs.models import Lab

    lab = Lab.objects.filter(pk=lab_id).select_related("course").first()
    if lab is None:
        return 0
    return services.submissions_regrade(lab=lab)


@shared_task(name="grading.lab_similarity")
def lab_similarity(lab_id: int) -> int:
    """Compute and cache the similar-submission pairs of a lab too large to compare in
    the request (grading/similarity.py). Reads only; a rerun finds them cached."""
    from labs.models import Lab

    from . import similarity

    lab = Lab.objects.filter(pk=lab_id).select_related("course").first()
    if lab is None:
        return 0
    try:
        return len(similarity.similar_pairs(lab))
    finally:
        similarity.computing_done(lab)


@shared_task(name="grading.prune_submissions")
def prune_submissions() -> dict:
    """Apply the retention policy (SHIPWRIGHT_RETENTION_DAYS; 0 leaves everything).
    Idempotent; scheduled daily by Celery beat."""
    from django.conf import settings

    from . import retention

    days = settings.SHIPWRIGHT_RETENTION_DAYS
    if days <= 0:
        return {}
    report = retention.prune(older_than_days=days)
    return {
        "submissions": report.submissions,
        "snapshots": report.snapshots,
        "snapshot_bytes": report.snapshot_bytes,
        "stage_outputs": report.stage_outputs,
        "stage_output_bytes": report.stage_output_bytes,
    }


@shared_task(bind=True, name="grading.preview_regrade_item", acks_late=True, max_retries=None)
def preview_regrade_item(self, item_id: int) -> None:
    """Grade one submission of a regrade preview into shadow results (the low queue).
    Idempotent: a redelivered message finds the item claimed or done and does
    nothing. Platform errors send it again with a countdown."""
    from . import regrades

    outcome = regrades.regrade_item_grade(item_id, worker=self.request.hostname or "worker")
    if isinstance(outcome, services.Retry):
        regrades.regrade_item_retry(item_id=item_id, countdown_s=outcome.countdown_s)
