"""What certificates plugs into the apps below it (called from CertificatesConfig.ready()).

Certificates is the top layer: grading and accounts never import it, they call the
hooks registered here (see grading/hooks.py and accounts/hooks.py).
"""

from __future__ import annotations

from collections.abc import Iterator

from grading import hooks as grading_hooks
from grading.models import Submission

from . import services
from .models import Certificate, PendingCertificate


def _award_if_complete(submission: Submission) -> None:
    """A pass, inside its grading transaction. A grading worker never signs (it does
    not hold the key: a sandbox escape on a grading host must not hand it out): it
    records the certificate as owed and the signing worker issues it after commit.
    `manage.py grade` runs in the operator's process and issues it at once, so its
    JSON reports the certificate (docs/contracts.md section 1)."""
    course = submission.lab.course
    if grading_hooks.grading_in_process.get():
        services.certificate_award_if_complete(user=submission.user, course=course)
    else:
        services.certificate_award_later(user=submission.user, course=course)


def _result_certificate(submission: Submission) -> dict | None:
    certificate = services.certificate_for(user=submission.user, course=submission.lab.course)
    if certificate is None:
        return None
    return {"id": certificate.public_id, "url": f"/verify/{certificate.public_id}/"}


def _evidence_submission_ids() -> set:
    """Attempts matching a certificate's evidence. Certificates record their evidence
    by value (lab, score, lab content hash, image digest, commit), not by submission
    id, so matching on those values keeps the attempt that backed the certificate
    even after a better one."""
    kept: set = set()
    for certificate in Certificate.objects.filter(user__isnull=False).only("user_id", "course_id", "evidence"):
        if certificate.user_id is None:  # filtered out above; for the type checker
            continue
        for item in certificate.evidence or []:
            if not isinstance(item, dict) or "slug" not in item:
                continue
            matches = Submission.objects.filter(
                user_id=certificate.user_id,
                lab__course_id=certificate.course_id,
                lab__slug=item["slug"],
                status=Submission.Status.PASSED,
                score=item.get("score"),
                max_score=item.get("max_score"),
                lab_hash=item.get("lab_hash", ""),
            )
            kept.update(matches.values_list("pk", flat=True))
    return kept


def _issue_pending() -> None:
    """On each reaper tick: hand certificates still owed (waiting for a key, or whose
    message was lost) to the signing worker; the reaper's worker holds no key."""
    from django.conf import settings

    from .tasks import issue_pending

    if PendingCertificate.objects.exclude(user__display_name="").exists():
        interval = settings.SHIPWRIGHT_REAPER_INTERVAL_S
        # Expires with the tick: a backlog of sweeps nobody ran in time is not worth running.
        issue_pending.apply_async(queue=settings.SHIPWRIGHT_CERTIFICATES_QUEUE, expires=interval)


def _export(user) -> Iterator[tuple[str, Iterator[dict]]]:
    yield (
        "certificates",
        (
            {
                "id": c.public_id,
                "title": c.title,
                "issued_at": c.issued_at.isoformat() if c.issued_at else None,
                "status": c.status,
                "public": c.public,
                "show_evidence": c.show_evidence,
            }
            for c in Certificate.objects.filter(user=user).iterator()
        ),
    )


def _erase(user) -> None:
    """Revoke with the reason "withdrawn by holder" and keep, unlinked and without the
    holder's name, evidence or signed credential (it names the holder), so a verifier
    sees "revoked" rather than a certificate that silently vanished."""
    for certificate in Certificate.objects.filter(user=user):
        services.certificate_revoke(certificate=certificate, reason=services.WITHDRAWN_BY_HOLDER, by="holder")
    Certificate.objects.filter(user=user).update(holder_name="", evidence=[], credential="")


def _issue_pending_for(user) -> None:
    """The learner saved the name to print: issue what waited for it."""
    services.certificates_issue_pending(user=user)


def _course_complete(*, user, course) -> bool:
    """A course is complete once its certificate is earned (issued, or pending), or
    when every lab is passed and the certificate waits only for a prerequisite's."""
    certificate = services.certificate_for(user=user, course=course)
    if certificate is not None:
        return certificate.status != Certificate.Status.REVOKED
    if course.prerequisites and services.labs_passed(user=user, course=course) is not None:
        return True
    return services.certificate_pending(user=user, course=course)


def _certified_user_ids(course) -> set:
    """Holders of a current, unrevoked certificate of `course` (the analytics funnel)."""
    return set(
        Certificate.objects.filter(course=course, current=True, user__isnull=False)
        .exclude(status=Certificate.Status.REVOKED)
        .values_list("user_id", flat=True)
    )


def register() -> None:
    from accounts import hooks as account_hooks
    from courses import progress as course_progress

    grading_hooks.submission_passed.append(_award_if_complete)
    grading_hooks.result_certificate.append(_result_certificate)
    grading_hooks.kept_submission_ids.append(_evidence_submission_ids)
    grading_hooks.maintenance.append(_issue_pending)
    grading_hooks.course_certified_user_ids.append(_certified_user_ids)
    account_hooks.account_exporters.append(_export)
    account_hooks.account_erasers.append(_erase)
    account_hooks.display_name_saved.append(_issue_pending_for)
    course_progress.course_completion.append(_course_complete)
