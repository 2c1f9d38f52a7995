"""Celery adapters: take primary keys, call a service."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(bind=True, name="grading.grade_submission", acks_late=True, max_retries=None)
def grade_submission(self, submission_id: str) -> None:
    """Grade one submission. Idempotent: a redelivered message finds it claimed
    or finished and does nothing. Retries only for platform errors."""
    outcome = services.submission_grade(submission_id, worker=self.request.hostname or "worker")
    if isinstance(outcome, services.Retry):
        raise self.retry(countdown=outcome.countdown_s)


@shared_task(name="grading.reap_stale_submissions")
def reap_stale_submissions() -> list[str]:
    """Requeue submissions whose worker died; remove leftover containers."""
    from .sandbox import SandboxError, reap_leftovers

    acted = services.submissions_reap_stale()
    try:
        reap_leftovers(older_than_s=services.budget.MAX_HARD_LIMIT_S)
    except SandboxError:
        pass
    return acted


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
