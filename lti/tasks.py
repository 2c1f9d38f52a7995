"""Celery adapters of the LTI tool (on the intake queue: network, no Docker)."""

from __future__ import annotations

import logging

from celery import shared_task

from . import services

log = logging.getLogger(__name__)

GRADE_SYNC_RETRIES = 8


@shared_task(bind=True, name="lti.grade_sync_send", acks_late=True, max_retries=GRADE_SYNC_RETRIES)
def grade_sync_send(self, sync_id: int) -> None:
    """Send one learner's best score for a lab to the LMS; an LMS that cannot be
    reached or refuses is retried with backoff, then the sync shows as failed (the
    instructor can resend it)."""
    try:
        services.grade_sync_send(sync_id)
    except Exception as exc:
        final = self.request.retries >= GRADE_SYNC_RETRIES
        log.warning("grade sync %s failed (attempt %s): %s", sync_id, self.request.retries + 1, exc)
        services.grade_sync_failed(sync_id=sync_id, error=f"{type(exc).__name__}: {exc}", final=final)
        if final:
            return
        raise self.retry(countdown=min(10 * 2**self.request.retries, 600), exc=exc) from exc


@shared_task(name="lti.roster_sync")
def roster_sync(context_id: int) -> None:
    services.roster_sync(context_id)
