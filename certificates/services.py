"""Issuing, revoking and reading certificates.

A certificate's credential is built once, signed once and stored; pages and
downloads serve the stored bytes. Status changes touch only the signed status
list, never the credential.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
from datetime import UTC, datetime
from functools import lru_cache
from urllib.parse import urlencode

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Subquery
from django.utils import timezone

from accounts.mail import mail_send_template
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
# The revocation reason of a certificate replaced by a reissue with a new holder name.
SUPERSEDED = "superseded"
ISSUER_NAME = "Shipwright"
# Shown to a learner whose certificate waits for a signing key.
CERTIFICATE_PENDING_TEXT = "You completed {course}: your certificate will be issued shortly."
# Logged (stderr for `manage.py grade`, the worker's log) when a certificate has to wait.
CERTIFICATE_PENDING_LOG = (
    "The certificate {course} earned by learner {user} is pending: {reason}. "
    f"It is issued as soon as a key exists: run `{keys.GENERATE_KEY_COMMAND}`."
)

# The pending row's reason while the signing worker has the certificate in hand (the
# grading transaction committed it and sent the task): the verdict page polls.
CERTIFICATE_ISSUING = "being issued by the signing worker"
# Shown meanwhile, for the second or so it takes.
CERTIFICATE_ISSUING_TEXT = "You completed {course}: issuing your certificate…"

# Shown to a learner whose certificate waits for the name to print on it.
CERTIFICATE_NEEDS_NAME_TEXT = "You completed {course}: tell us the name to print on your certificate, and it is issued."
# The pending row's reason (for operators) when the learner has not given a name.
HOLDER_NAME_MISSING = "the learner has not given the name to print on certificates"
CERTIFICATE_NEEDS_NAME_LOG = (
    "The certificate {course} earned by learner {user} waits for the name to print on it: the learner "
    "gives it on their profile (or grade with `--user EMAIL --name NAME`)."
)
CERTIFICATE_NEEDS_PREREQUISITE_TEXT = (
    "You passed every lab of {course}: its certificate builds on {missing}, and is issued as soon as you hold "
    "that certificate too."
)
REISSUE_SAME_NAME = "Your certificate already carries this name."
REISSUE_NOT_VALID = "Only a valid certificate can be reissued."

logger = logging.getLogger(__name__)


class HolderNameMissing(Exception):
    """The learner has not said what name certificates should print. Certificates
    never fall back to the e-mail address (or its local part): it waits as pending."""


class ReissueRefused(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def holder_name(user) -> str:
    """The name printed on `user`'s certificates: the one the learner gave, never
    derived from the e-mail address."""
    name = (getattr(user, "display_name", "") or "").strip()
    if not name:
        raise HolderNameMissing(HOLDER_NAME_MISSING)
    return name


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def status_list_url(slug: str = STATUS_LIST_SLUG) -> str:
    return f"{settings.SITE_URL}/status/{slug}"


def verify_url(public_id: str) -> str:
    return f"{settings.SITE_URL}/verify/{public_id}/"


def certificate_for(*, user, course: Course) -> Certificate | None:
    """The learner's current certificate of `course` (a superseded one is not)."""
    if user is None or not getattr(user, "pk", None):
        return None
    return Certificate.objects.filter(user=user, course=course, current=True).first()


def linkedin_url(certificate: Certificate) -> str:
    """LinkedIn's "Add to profile" link with the certificate's fields filled in."""
    return "https://www.linkedin.com/profile/add?" + urlencode(
        {
            "startTask": "CERTIFICATION_NAME",
            "name": certificate.title,
            "organizationName": ISSUER_NAME,
            "issueYear": certificate.issued_at.year,
            "issueMonth": certificate.issued_at.month,
            "certUrl": verify_url(certificate.public_id),
            "certId": certificate.public_id,
        }
    )


def _best_passing(user, lab: Lab, pass_mark: float | None) -> Submission | None:
    # The grading app's best-attempt rule; the first passed attempt over the mark is the best.
    for submission in Submission.objects.for_user(user).filter(lab=lab).passed().best_first():
        if pass_mark is None or (submission.percent or 0.0) + 1e-9 >= pass_mark:
            return submission
    return None


def _held(*, user, course: Course) -> Certificate | None:
    certificate = certificate_for(user=user, course=course)
    return certificate if certificate is not None and certificate.status == Certificate.Status.VALID else None


def prerequisite_certificates(*, user, course: Course) -> list[Certificate] | None:
    """The learner's valid current certificate of each prerequisite course of
    `course` (in course.yaml's order), or None if any is missing."""
    held = [_held(user=user, course=prerequisite) for prerequisite in course.prerequisite_courses()]
    return None if None in held else [certificate for certificate in held if certificate is not None]


def missing_prerequisites(*, user, course: Course) -> list[Course]:
    """The prerequisite courses of `course` whose valid certificate `user` lacks."""
    return [
        prerequisite for prerequisite in course.prerequisite_courses() if _held(user=user, course=prerequisite) is None
    ]


def labs_passed(*, user, course: Course) -> list[Submission] | None:
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


def requirements_met(*, user, course: Course) -> list[Submission] | None:
    """The best passing submission for each required lab, or None if any is missing
    or the learner lacks a prerequisite course's certificate: a certificate that
    builds on another links it, so that one must exist first."""
    if prerequisite_certificates(user=user, course=course) is None:
        return None
    return labs_passed(user=user, course=course)


def _award_dependents(*, user, course: Course) -> None:
    """Issue the certificates that waited only for this course's: the courses that
    list `course` as a prerequisite and whose labs `user` has passed."""
    for dependent in Course.objects.exclude(pk=course.pk).exclude(prerequisites=[]):
        # Filtered here, not with a JSON `contains` lookup: SQLite (make run) lacks it.
        if course.slug in dependent.prerequisites:
            certificate_award_if_complete(user=user, course=dependent)


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
    """Issue and sign the course certificate if `user` now meets every requirement
    and has none yet; exactly once per learner and course (a unique constraint backs
    this up). Only processes that hold the signing key call it: the signing worker
    (`certificate_issue_owed`), `manage.py grade` inside the transaction that stores
    the passing result, and the web when a learner gives their name. Grading workers
    call `certificate_award_later` instead.

    Without a usable signing key nothing is raised into that transaction (the pass
    must be stored): the certificate is recorded as pending instead, and
    `certificates_issue_pending` issues it once a key exists. Likewise while the
    learner has given no name to print: it is issued when they give one
    (`certificates_issue_pending(user=...)`, called when the name is saved).

    The learner is e-mailed the verify link once the issuing transaction commits
    (nothing is sent if it rolls back)."""
    if certificate_for(user=user, course=course) is not None:
        return None
    evidence = requirements_met(user=user, course=course)
    if evidence is None:
        return None
    try:
        with transaction.atomic():
            certificate = _issue(user=user, course=course, evidence=evidence)
    except IntegrityError:
        # Issued concurrently by another worker: exactly once still holds.
        return certificate_for(user=user, course=course)
    except keys.SigningKeyUnavailable as exc:
        PendingCertificate.objects.update_or_create(user=user, course=course, defaults={"reason": str(exc)})
        logger.warning(CERTIFICATE_PENDING_LOG.format(course=course.slug, user=user.pk, reason=exc))
        return None
    except HolderNameMissing as exc:
        PendingCertificate.objects.update_or_create(user=user, course=course, defaults={"reason": str(exc)})
        logger.warning(CERTIFICATE_NEEDS_NAME_LOG.format(course=course.slug, user=user.pk))
        return None
    _award_dependents(user=user, course=course)
    return certificate


def certificate_award_later(*, user, course: Course) -> bool:
    """The grading workers' half of awarding: signs nothing and needs no key. Call
    inside the transaction that stores the passing result. When `user` now meets
    every requirement of `course` and holds no certificate, the certificate is
    recorded as owed (a PendingCertificate "being issued") and, once the transaction
    commits, `certificates.issue_certificate` is sent to the certificates queue,
    whose worker (the only process holding the signing key) issues it. Returns
    whether a certificate is owed.

    Idempotent: a second pass records the same row and sends a second message,
    which finds the certificate issued and does nothing. A message lost with the
    broker is sent again by the reaper's sweep of pending rows."""
    if certificate_for(user=user, course=course) is not None:
        return False
    if requirements_met(user=user, course=course) is None:
        return False
    PendingCertificate.objects.update_or_create(user=user, course=course, defaults={"reason": CERTIFICATE_ISSUING})
    from .tasks import issue_certificate

    user_id, course_id = user.pk, course.pk
    # robust: a broker that is down must not fail a grading that has committed; the
    # pending row stays, and the reaper's sweep sends the work again.
    transaction.on_commit(
        lambda: issue_certificate.apply_async(args=[user_id, course_id], queue=settings.SHIPWRIGHT_CERTIFICATES_QUEUE),
        robust=True,
    )
    return True


def certificate_issue_owed(*, user_id: int, course_id: int) -> Certificate | None:
    """The signing worker's half (`certificates.issue_certificate`): issue and sign
    the certificate `user_id` earned in `course_id`, if it is still owed. Returns
    the learner's certificate (issued now or earlier), or None when it waits (no
    usable key, no name: the pending row says why) or nothing is owed.

    Idempotent: the pending row is locked while it is handled, so a duplicated
    message waits, then finds the certificate issued; the certificate's unique
    constraint backs that up. At most one certificate, one "issued" event and one
    e-mail (sent on commit) per learner and course."""
    from accounts.models import User

    with transaction.atomic():
        PendingCertificate.objects.select_for_update().filter(user_id=user_id, course_id=course_id).first()
        user = User.objects.filter(pk=user_id).first()
        course = Course.objects.filter(pk=course_id).first()
        if user is None or course is None:
            return None
        certificate = certificate_award_if_complete(user=user, course=course)
        if certificate is None:
            certificate = certificate_for(user=user, course=course)
            if certificate is not None or requirements_met(user=user, course=course) is None:
                # Issued before (a duplicated message), or nothing is owed any more.
                PendingCertificate.objects.filter(user_id=user_id, course_id=course_id).delete()
        if certificate is not None:
            _result_certificate_refresh(certificate)
    return certificate


def _result_certificate_refresh(certificate: Certificate) -> None:
    """Write the certificate into the result document of the pass that completed the
    course (the newest of its evidence), which was stored before the certificate existed."""
    from grading.services import submission_result_certificate_refresh

    evidence = labs_passed(user=certificate.user, course=certificate.course) or []
    finished = [(sub.finished_at, sub) for sub in evidence if sub.finished_at is not None]
    if finished:
        _, newest = max(finished, key=lambda pair: pair[0])
        submission_result_certificate_refresh(submission=newest)


def certificate_issuing(*, user, course: Course) -> bool:
    """Whether the signing worker has `user`'s certificate of `course` in hand."""
    if user is None or not getattr(user, "pk", None):
        return False
    return PendingCertificate.objects.filter(user=user, course=course, reason=CERTIFICATE_ISSUING).exists()


def certificate_pending(*, user, course: Course) -> bool:
    """Whether `user` earned the certificate of `course` and it waits for a key."""
    if user is None or not getattr(user, "pk", None):
        return False
    return PendingCertificate.objects.filter(user=user, course=course).exists()


def certificate_needs_name(*, user) -> bool:
    """Whether a certificate `user` earned waits only for the name to print on it."""
    if user is None or not getattr(user, "pk", None) or (user.display_name or "").strip():
        return False
    return PendingCertificate.objects.filter(user=user).exists()


def certificates_issue_pending(*, user=None) -> list[Certificate]:
    """Issue every pending certificate (of `user` only, if given) whose learner has
    given a name, if a signing key is usable now. Called by the signing worker
    (`certificates.issue_pending`, which the reaper sends every tick while rows are
    pending), by `generate_signing_key`, and when a learner saves their name.
    Idempotent and safe to run in several processes at once: each pending row is
    locked while it is handled, and the certificate's unique constraint backs that
    up. Each certificate issued is e-mailed to its learner once (on commit)."""
    rows = PendingCertificate.objects.exclude(user__display_name="")
    if user is not None:
        rows = rows.filter(user=user)
    pending = list(rows.values_list("pk", flat=True))
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
                _result_certificate_refresh(certificate)
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


def _issue(*, user, course: Course, evidence: list[Submission], replaces: Certificate | None = None) -> Certificate:
    name = holder_name(user)
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
    builds_on = prerequisite_certificates(user=user, course=course) or []
    evidence_items += [
        {
            "id": verify_url(prior.public_id),
            "type": ["Evidence"],
            "name": f"Prerequisite: {prior.title}",
            "description": (
                f"This achievement builds on the credential {prior.title}, issued to the same holder on "
                f"{prior.issued_at:%Y-%m-%d}; verify it at this URL."
            ),
        }
        for prior in builds_on
    ]
    criteria = f"Pass every required lab, graded by running the learner's pipeline: {labs}."
    if course.prerequisites:
        prior_titles = ", ".join(c.certificate_title or c.title for c in course.prerequisite_courses())
        criteria += f" Hold the certificate {prior_titles} first."
    description = f"Awarded for passing every graded lab of the course {course.title}."
    if builds_on:
        description += " It builds on " + ", ".join(prior.title for prior in builds_on) + "."
    unsigned = build_open_badge_credential(
        credential_url=verify_url(public_id),
        issuer_did=keys.issuer_did(),
        issuer_name=ISSUER_NAME,
        issuer_url=settings.SITE_URL + "/",
        holder_name=name,
        achievement_id=f"{settings.SITE_URL}/courses/{course.slug}/#certificate",
        achievement_name=title,
        achievement_description=description,
        criteria_narrative=criteria,
        valid_from=_iso(issued_at),
        status_list_url=status_list_url(),
        status_index=index,
        evidence=evidence_items,
        replaces=_replaced_reference(replaces) if replaces else None,
        related=[_replaced_reference(prior) for prior in builds_on],
    )
    signed = signing.sign(
        unsigned, private_key=key.private_key, verification_method=key.verification_method, created=_iso(issued_at)
    )
    certificate = Certificate.objects.create(
        public_id=public_id,
        user=user,
        course=course,
        title=title,
        holder_name=name,
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
        replaces=replaces,
        prerequisites=[
            {
                "course": prior.course.slug,
                "title": prior.title,
                "public_id": prior.public_id,
                "issued": f"{prior.issued_at:%Y-%m-%d}",
            }
            for prior in builds_on
        ],
        public=replaces.public if replaces else True,
        show_evidence=replaces.show_evidence if replaces else True,
    )
    CertificateEvent.objects.create(certificate=certificate, action=CertificateEvent.Action.ISSUED, by_label="system")
    PendingCertificate.objects.filter(user=user, course=course).delete()
    # After commit, so a rolled-back grading transaction sends nothing; robust, so
    # a mail server that is down is logged and never undoes the certificate.
    transaction.on_commit(lambda: certificate_email_send(certificate_pk=certificate.pk), robust=True)
    return certificate


def _replaced_reference(old: Certificate) -> dict:
    """The VC 2.0 `relatedResource` naming the credential this one replaces (or, for
    a prerequisite, builds on), with the digest of its exact served bytes (a
    verifier can fetch and compare them)."""
    digest = base64.b64encode(hashlib.sha384(old.credential.encode()).digest()).decode()
    return {
        "id": f"{verify_url(old.public_id)}credential.json",
        "mediaType": "application/vc+ld+json",
        "digestSRI": f"sha384-{digest}",
    }


def certificate_email_send(*, certificate_pk: int) -> None:
    """E-mail the learner their new certificate: the verify link to share, the
    LinkedIn link and the dashboard. Called once, when the issuing commits."""
    certificate = Certificate.objects.select_related("user", "course").filter(pk=certificate_pk).first()
    if certificate is None or certificate.user is None or not certificate.user.email:
        return
    context = {
        "certificate": certificate,
        "verify_url": verify_url(certificate.public_id),
        "linkedin_url": linkedin_url(certificate),
        "dashboard_url": f"{settings.SITE_URL}/dashboard/",
        "replaced": certificate.replaces_id is not None,
    }
    mail_send_template(to=[certificate.user.email], template_prefix="certificates/email/issued", context=context)


@transaction.atomic
def certificate_reissue(*, certificate: Certificate, by=None) -> Certificate:
    """Reissue a valid certificate with the holder's current name: the old one is
    revoked with the reason "superseded" (its status list bit set), the new one
    names it (`replaces`, and `relatedResource` in the signed credential) and is
    e-mailed. Raises ReissueRefused when the name is unchanged or the certificate
    is not valid, HolderNameMissing without a name."""
    old = Certificate.objects.select_for_update(of=("self",)).select_related("user", "course").get(pk=certificate.pk)
    if old.status != Certificate.Status.VALID or not old.current or old.user is None:
        raise ReissueRefused(REISSUE_NOT_VALID)
    name = holder_name(old.user)
    if name == old.holder_name:
        raise ReissueRefused(REISSUE_SAME_NAME)
    # The labs only: a reissue keeps the achievement even if a prerequisite's
    # certificate has since been revoked (it then links none).
    evidence = labs_passed(user=old.user, course=old.course)
    if evidence is None:
        raise ReissueRefused(REISSUE_NOT_VALID)
    # Not current first: the new one takes the (user, course) slot in the same transaction.
    Certificate.objects.filter(pk=old.pk).update(current=False)
    certificate_revoke(certificate=old, reason=SUPERSEDED, by=by)
    return _issue(user=old.user, course=old.course, evidence=evidence, replaces=old)


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


def verification_inputs() -> dict[str, Subquery]:
    """Annotations for a Certificate query that read, in that same query, what
    `certificate_verify` needs besides the credential: the exact text of both signed
    status lists and the version of the published key set."""
    lists = StatusList.objects.values("credential")
    return {
        "revocation_list": Subquery(lists.filter(slug=STATUS_LIST_SLUG)[:1]),
        "suspension_list": Subquery(lists.filter(slug=SUSPENSION_LIST_SLUG)[:1]),
        **keys.keys_version_annotations(),
    }


def certificate_verification_texts(certificate: Certificate) -> tuple[str, str, str, str]:
    """The exact texts a verification of `certificate` rests on: its stored
    credential, the DID document and the two signed status lists, as served now.

    A certificate read with `.annotate(**verification_inputs())` brings the status
    lists and the key set's version along (the verify page's one query); otherwise
    they are read here."""
    version = None
    if (count := getattr(certificate, "signing_keys_count", None)) is not None:
        version = (count, getattr(certificate, "signing_keys_newest", None))
    return (
        certificate.credential,
        keys.did_document_json(version),
        getattr(certificate, "revocation_list", None) or status_list_json(),
        getattr(certificate, "suspension_list", None) or status_list_json(SUSPENSION_LIST_SLUG),
    )


def verification_minute() -> int:
    """The minute a verification's date checks hold for (they are redone every minute)."""
    return int(timezone.now().timestamp() // 60)


def certificate_verify(certificate: Certificate) -> VerificationReport:
    """Re-verify the stored credential bytes against the published DID document
    and status lists. Memoized on the exact text of all four (and the minute), so
    a change to any of them, such as tampering in the database, is verified afresh
    and shows as a failed check."""
    return _verify_cached(*certificate_verification_texts(certificate), verification_minute())
