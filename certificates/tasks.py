"""Celery adapters of the signing worker: take primary keys, call a service.

Both run on the certificates queue (SHIPWRIGHT_CERTIFICATES_QUEUE), consumed only by
the processes that hold the signing key (the image's `signer` role; `make run`'s
worker). A grading worker sends them and never signs.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import InterfaceError, OperationalError

from . import services

log = logging.getLogger(__name__)

# Platform failures (the database away) are retried with backoff, for about 20 minutes;
# the pending row outlives the last retry, and the reaper's sweep sends it again.
RETRIES = 8


def _backoff_s(retries: int) -> int:
    return min(10 * 2**retries, 300)


@shared_task(bind=True, name="certificates.issue_certificate", acks_late=True, max_retries=RETRIES)
def issue_certificate(self, user_id: int, course_id: int) -> str | None:
    """Issue and sign the certificate the learner earned in the course, sent by the
    grading transaction that stored the completing pass. Idempotent: a duplicated
    or redelivered message finds the certificate issued and issues nothing."""
    try:
        certificate = services.certificate_issue_owed(user_id=user_id, course_id=course_id)
    except (OperationalError, InterfaceError) as exc:
        log.warning(
            "certificate of learner %s in course %s: database unavailable (%s); retrying", user_id, course_id, exc
        )
        raise self.retry(countdown=_backoff_s(self.request.retries)) from exc
    return certificate.public_id if certificate else None


@shared_task(bind=True, name="certificates.issue_pending", acks_late=True, max_retries=RETRIES)
def issue_pending(self) -> int:
    """Issue every certificate still owed (waiting for a key that now exists, or
    whose message was lost). Sent by the reaper on each tick while rows are pending;
    idempotent and safe beside `issue_certificate` (each row is locked while handled)."""
    try:
        return len(services.certificates_issue_pending())
    except (OperationalError, InterfaceError) as exc:
        log.warning("pending certificates: database unavailable (%s); retrying", exc)
        raise self.retry(countdown=_backoff_s(self.request.retries)) from exc
