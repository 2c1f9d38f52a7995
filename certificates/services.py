"""Issuing, revoking and reading certificates.

A certificate's credential is built once, signed once and stored; pages and
downloads serve the stored bytes. Status changes touch only the signed status
list, never the credential.
"""

from __future__ import annotations

import json
import logging
import secrets
from datetime import UTC, datetime
from functools import lru_cache

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from courses.models import Course
from grading.models import Submission
from labs.models import Lab

from . import keys, signing
from . import status_list as bitstring
from .credential import build_open_badge_credential
from .models import Certificate, CertificateEvent, PendingCertificate, StatusList
from .verifier import VerificationReport, verify_credential

STATUS_LIST_SLUG = "revocation"
# A second signed list, same index as the revocation one: a set bit means suspended
# (reversible), so verifiers outside this site see a suspension too.
SUSPENSION_LIST_SLUG = "suspension"
STATUS_LIST_SLUGS = (STATUS_LIST_SLUG, SUSPENSION_LIST_SLUG)
WITHDRAWN_BY_HOLDER = "withdrawn by holder"
ISSUER_NAME = "Shipwright"
# Shown to a learner whose certificate waits for a signing key.
CERTIFICATE_PENDING_TEXT = "You completed {course}: your certificate will be issued shortly."
# Logged (stderr for `manage.py grade`, the worker's log) when a certificate has to wait.
CERTIFICATE_PENDING_LOG = (
    "The certificate {course} earned by learner {user} is pending: {reason}. "
    f"It is issued as soon as a key exists: run `{keys.GENERATE_KEY_COMMAND}`."
)

logger = logging.getLogger(__name__)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def status_list_url(slug: str = STATUS_LIST_SLUG) -> str:
    return f"{settings.SITE_URL}/status/{slug}"


def verify_url(public_id: str) -> str:
    return f"{settings.SITE_URL}/verify/{public_id}/"


def certificate_for(*, user, course: Course) -> Certificate | None:
    if user is None or not getattr(user, "pk", None):
        return None
    return Certificate.objects.filter(user=user, course=course).first()


def _best_passing(user, lab: Lab, pass_mark: float | None) -> Submission | None:
    # The grading app's best-attempt rule; the first passed attempt over the mark is the best.
    for submission in Submission.objects.for_user(user).filter(lab=lab).passed().best_first():
        if pass_mark is None or (submission.percent or 0.0) + 1e-9 >= pass_mark:
            return submission
    return None


def requirements_met(*, user, course: Course) -> list[Submission] | None:
    """The best passing submission for each required lab, or None if any is missing."""
    if not course.requirements:
        return None
    labs = {lab.slug: lab for lab in Lab.objects.filter(course=course)}
    evidence = []
    for requirement in course.requirements:
        lab = labs.get(requirement["lab"])
        if lab is None:
            return None
        best = _best_passing(user, lab, requirement.get("pass_mark"))
        if best is None:
            return None
        evidence.append(best)
    return evidence


def _status_list(slug: str = STATUS_LIST_SLUG) -> StatusList:
    status_list, _ = StatusList.objects.get_or_create(slug=slug, defaults={"bits": bytes(bitstring.new_bitstring())})
    return status_list


def _free_status_index() -> int:
    """A random unused index, so list positions say nothing about issue order."""
    size = bitstring.MIN_LIST_BITS
    used = set(Certificate.objects.values_list("status_index", flat=True))
    if len(used) >= size:
        raise RuntimeError("the status list is full")
    while True:
        index = secrets.randbelow(size)
        if index not in used:
            return index


def certificate_award_if_complete(*, user, course: Course) -> Certificate | None:
    """Issue the course certificate if `user` now meets every requirement and has
    none yet. Call inside the transaction that stores the passing result; exactly
    once per learner and course (a unique constraint backs this up).

    Without a usable signing key nothing is raised into that transaction (the pass
    must be stored): the certificate is recorded as pending instead, and
    `certificates_issue_pending` issues it once a key exists."""
    if certificate_for(user=user, course=course) is not None:
        return None
    evidence = requirements_met(user=user, course=course)
    if evidence is None:
        return None
    try:
        with transaction.atomic():
            return _issue(user=user, course=course, evidence=evidence)
    except IntegrityError:
        # Issued concurrently by another worker: exactly once still holds.
        return certificate_for(user=user, course=course)
    except keys.SigningKeyUnavailable as exc:
        PendingCertificate.objects.update_or_create(user=user, course=course, defaults={"reason": str(exc)})
        logger.warning(CERTIFICATE_PENDING_LOG.format(course=course.slug, user=user.pk, reason=exc))
        return None


def certificate_pending(*, user, course: Course) -> bool:
    """Whether `user` earned the certificate of `course` and it waits for a key."""
    if user is None or not getattr(user, "pk", None):
        return False
    return PendingCertificate.objects.filter(user=user, course=course).exists()


def certificates_issue_pending() -> list[Certificate]:
    """Issue every pending certificate, if a signing key is usable now. Called by
    the reaper (periodically) and by `generate_signing_key`. Idempotent and safe to
    run in several processes at once: each pending row is locked while it is
    handled, and the certificate's unique constraint backs that up."""
    pending = list(PendingCertificate.objects.values_list("pk", flat=True))
    if not pending:
        return []
    try:
        keys.load_current_key()
    except keys.SigningKeyUnavailable as exc:
        logger.error("%d certificate(s) are pending: %s. Run `%s`.", len(pending), exc, keys.GENERATE_KEY_COMMAND)
        return []
    issued = []
    for pk in pending:
        with transaction.atomic():
            # skip_locked: another process issuing this one right now will finish it.
            row = (
                PendingCertificate.objects.select_for_update(skip_locked=True)
                .select_related("user", "course")
                .filter(pk=pk)
                .first()
            )
            if row is None:
                continue
            certificate = certificate_award_if_complete(user=row.user, course=row.course)
            if certificate is not None:
                issued.append(certificate)
            elif certificate_for(user=row.user, course=row.course) is None and (
                requirements_met(user=row.user, course=row.course) is not None
            ):
                continue  # the key failed after all: still owed, left pending
            # Issued, or nothing is owed any more (the passing results are gone).
            PendingCertificate.objects.filter(pk=row.pk).delete()
    if issued:
        logger.info("issued %d pending certificate(s)", len(issued))
    return issued


def new_public_id() -> str:
    """192 random bits, URL-safe, never starting with "-": an id that begins with a
    dash is read as an option by `manage.py revoke_certificate ID` (1 in 64 did)."""
    while True:
        public_id = secrets.token_urlsafe(24)
        if not public_id.startswith("-"):
            return public_id


def _issue(*, user, course: Course, evidence: list[Submission]) -> Certificate:
    key = keys.current_key()
    public_id = new_public_id()
    issued_at = timezone.now().replace(microsecond=0)
    index = _free_status_index()
    _status_list()
    labs = ", ".join(sub.lab.title for sub in evidence)
    evidence_items = [
        {
            "id": f"{verify_url(public_id)}#lab-{sub.lab.slug}",
            "type": ["Evidence"],
            "name": f"Lab {sub.lab.slug}: {sub.score:g} / {sub.max_score:g}",
            "description": (
                f"Passed {sub.lab.title} on {sub.finished_at:%Y-%m-%d}; graded in a sandbox by the image "
                f"{sub.image_digest or sub.image}; lab content {sub.lab_hash[:16]}; source sha256 "
                f"{sub.snapshot_sha256[:16]}" + (f"; commit {sub.commit}" if sub.commit else "")
            ),
        }
        for sub in evidence
    ]
    title = course.certificate_title or course.title
    unsigned = build_open_badge_credential(
        credential_url=verify_url(public_id),
        issuer_did=keys.issuer_did(),
        issuer_name=ISSUER_NAME,
        issuer_url=settings.SITE_URL + "/",
        holder_name=user.public_name,
        achievement_id=f"{settings.SITE_URL}/courses/{course.slug}/#certificate",
        achievement_name=title,
        achievement_description=f"Awarded for passing every graded lab of the course {course.title}.",
        criteria_narrative=f"Pass every required lab, graded by running the learner's pipeline: {labs}.",
        valid_from=_iso(issued_at),
        status_list_url=status_list_url(),
        status_index=index,
        evidence=evidence_items,
    )
    signed = signing.sign(
        unsigned, private_key=key.private_key, verification_method=key.verification_method, created=_iso(issued_at)
    )
    certificate = Certificate.objects.create(
        public_id=public_id,
        user=user,
        course=course,
        title=title,
        holder_name=user.public_name,
        issued_at=issued_at,
        credential=json.dumps(signed, indent=2, ensure_ascii=False),
        signing_key=keys.register(key.key_id, key.private_key),
        status_index=index,
        evidence=[
            {
                "lab": sub.lab.title,
                "slug": sub.lab.slug,
                "score": sub.score,
                "max_score": sub.max_score,
                "date": f"{sub.finished_at:%Y-%m-%d}",
                "image_digest": sub.image_digest,
                "lab_hash": sub.lab_hash,
                "commit": sub.commit,
            }
            for sub in evidence
        ],
    )
    CertificateEvent.objects.create(certificate=certificate, action=CertificateEvent.Action.ISSUED, by_label="system")
    PendingCertificate.objects.filter(user=user, course=course).delete()
    return certificate


def status_list_json(slug: str = STATUS_LIST_SLUG) -> str:
    """The signed BitstringStatusListCredential `slug` (revocation or suspension) as
    served: the text stored on the row, re-signed when the bits change.

    Read from the database on every call, on purpose: a copy cached per process
    (the embedded default's LocMemCache) kept serving a revocation made by
    `manage.py revoke_certificate` in another process as valid for an hour. The
    read is one indexed row, the same cost as checking a cached copy's version."""
    text = StatusList.objects.filter(slug=slug).values_list("credential", flat=True).first()
    if not text:
        status_list = _status_list(slug)
        _resign(status_list)
        text = status_list.credential
    return text


def status_list_document(slug: str = STATUS_LIST_SLUG) -> dict:
    return json.loads(status_list_json(slug))


def _resign(status_list: StatusList) -> None:
    key = keys.current_key()
    now = _iso(timezone.now())
    unsigned = bitstring.status_list_credential(
        status_list_url=status_list_url(status_list.slug),
        issuer_did=keys.issuer_did(),
        bits=bytearray(bytes(status_list.bits)),
        valid_from=now,
        status_purpose=status_list.slug,
    )
    signed = signing.sign(
        unsigned, private_key=key.private_key, verification_method=key.verification_method, created=now
    )
    status_list.credential = json.dumps(signed)
    status_list.save(update_fields=["credential", "updated_at"])


def _set_bit(index: int, value: bool, slug: str = STATUS_LIST_SLUG) -> None:
    # The whole list is read, changed and re-signed: concurrent revocations take turns.
    status_list = StatusList.objects.select_for_update().get(pk=_status_list(slug).pk)
    if bitstring.is_set(bytes(status_list.bits), index) == value:
        return
    bits = bytearray(bytes(status_list.bits))
    bitstring.set_bit(bits, index, value)
    status_list.bits = bytes(bits)
    status_list.save(update_fields=["bits", "updated_at"])
    _resign(status_list)


def _change_status(
    *, certificate: Certificate, to: str, allowed_from: tuple[str, ...], action: str, reason: str, by
) -> Certificate:
    """Move a certificate between statuses and record who did it, when and why.
    A certificate not in `allowed_from` is returned unchanged (idempotent)."""
    # Locked, so a revoke and a reinstate at once cannot both pass the status test.
    certificate = Certificate.objects.select_for_update().get(pk=certificate.pk)
    if certificate.status not in allowed_from:
        return certificate
    certificate.status = to
    certificate.status_reason = reason if to != Certificate.Status.VALID else ""
    certificate.status_changed_at = timezone.now()
    certificate.save(update_fields=["status", "status_reason", "status_changed_at"])
    CertificateEvent.objects.create(
        certificate=certificate,
        action=action,
        reason=reason,
        by=by if getattr(by, "pk", None) else None,
        by_label=getattr(by, "email", "") or (by if isinstance(by, str) else "system"),
    )
    return certificate


def _required(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise ValueError("a reason is required")
    return reason


@transaction.atomic
def certificate_revoke(*, certificate: Certificate, reason: str, by=None) -> Certificate:
    """Revoke for good: the status list bit is set and the page says so. A
    suspended certificate's suspension bit is cleared: it is revoked, not both."""
    status = Certificate.Status
    was_suspended = Certificate.objects.filter(pk=certificate.pk, status=status.SUSPENDED).exists()
    changed = _change_status(
        certificate=certificate,
        to=status.REVOKED,
        allowed_from=(status.VALID, status.SUSPENDED),
        action=CertificateEvent.Action.REVOKED,
        reason=_required(reason),
        by=by,
    )
    if changed.status == status.REVOKED:
        _set_bit(changed.status_index, True)
        if was_suspended:
            _set_bit(changed.status_index, False, SUSPENSION_LIST_SLUG)
    return changed


@transaction.atomic
def certificate_suspend(*, certificate: Certificate, reason: str, by=None) -> Certificate:
    """Suspend pending review: shown on the verify page, and the bit is set in the
    signed suspension list for verifiers elsewhere. Reversible."""
    changed = _change_status(
        certificate=certificate,
        to=Certificate.Status.SUSPENDED,
        allowed_from=(Certificate.Status.VALID,),
        action=CertificateEvent.Action.SUSPENDED,
        reason=_required(reason),
        by=by,
    )
    if changed.status == Certificate.Status.SUSPENDED:
        _set_bit(changed.status_index, True, SUSPENSION_LIST_SLUG)
    return changed


@transaction.atomic
def certificate_reinstate(*, certificate: Certificate, reason: str = "", by=None) -> Certificate:
    """Lift a suspension (its bit is cleared). A revoked certificate stays revoked."""
    changed = _change_status(
        certificate=certificate,
        to=Certificate.Status.VALID,
        allowed_from=(Certificate.Status.SUSPENDED,),
        action=CertificateEvent.Action.REINSTATED,
        reason=reason.strip(),
        by=by,
    )
    if changed.status == Certificate.Status.VALID:
        _set_bit(changed.status_index, False, SUSPENSION_LIST_SLUG)
    return changed


@lru_cache(maxsize=1024)
def _verify_cached(credential: str, did: str, status: str, suspension: str, minute: int) -> VerificationReport:
    # `minute` is part of the cache key only: date checks are redone every minute.
    return verify_credential(
        json.loads(credential),
        json.loads(did),
        status_list=json.loads(status),
        suspension_list=json.loads(suspension),
    )


def certificate_verify(certificate: Certificate) -> VerificationReport:
    """Re-verify the stored credential bytes against the published DID document
    and status lists. Memoized on the exact text of all four (and the minute), so
    a change to any of them, such as tampering in the database, is verified afresh
    and shows as a failed check."""
    minute = int(timezone.now().timestamp() // 60)
    return _verify_cached(
        certificate.credential,
        keys.did_document_json(),
        status_list_json(),
        status_list_json(SUSPENSION_LIST_SLUG),
        minute,
    )
