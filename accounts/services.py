from __future__ import annotations

import hashlib
import secrets

from django.utils import timezone

from .models import ApiToken, User


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def api_token_create(*, user: User, name: str) -> tuple[ApiToken, str]:
    """Create a token; returns the row and the token text (shown once, never stored)."""
    token = ApiToken.PREFIX + secrets.token_urlsafe(32)
    row = ApiToken.objects.create(
        user=user, name=name.strip()[:100] or "CI", key_prefix=token[:12], key_hash=_hash(token)
    )
    return row, token


def api_token_revoke(*, user: User, token_id: int) -> bool:
    return bool(ApiToken.objects.active().filter(user=user, pk=token_id).update(revoked_at=timezone.now()))


def api_token_authenticate(token: str) -> User | None:
    """The active user owning an unrevoked token, or None."""
    if not token.startswith(ApiToken.PREFIX):
        return None
    row = ApiToken.objects.active().select_related("user").filter(key_hash=_hash(token)).first()
    if row is None or not row.user.is_active:
        return None
    ApiToken.objects.filter(pk=row.pk).update(last_used_at=timezone.now())
    return row.user


def user_data_export(*, user: User) -> dict:
    """Everything Shipwright holds about `user`, as JSON-ready data (GDPR access)."""
    from certificates.models import Certificate
    from courses.models import Enrollment, LessonProgress, QuizAttempt
    from grading.models import Submission

    def when(value):
        return value.isoformat() if value else None

    return {
        "account": {
            "email": user.email,
            "display_name": user.display_name,
            "date_joined": when(user.date_joined),
            "last_login": when(user.last_login),
        },
        "enrollments": [
            {"course": e.course.slug, "enrolled_at": when(e.created_at), "last_page": e.last_url}
            for e in Enrollment.objects.filter(user=user).select_related("course")
        ],
        "lessons_read": [
            {
                "lesson": f"{p.lesson.module.course.slug}/{p.lesson.module.slug}/{p.lesson.slug}",
                "at": when(p.completed_at),
            }
            for p in LessonProgress.objects.filter(user=user).select_related("lesson__module__course")
        ],
        "knowledge_checks": [
            {
                "module": f"{a.module.course.slug}/{a.module.slug}",
                "correct": a.correct,
                "total": a.total,
                "passed": a.passed,
                "answers": a.answers,
                "at": when(a.created_at),
            }
            for a in QuizAttempt.objects.filter(user=user).select_related("module__course")
        ],
        "submissions": [
            {
                "id": str(s.pk),
                "lab": s.lab.full_slug,
                "created_at": when(s.created_at),
                "status": s.status,
                "source": s.source_name,
                "commit": s.commit or None,
                "source_sha256": s.snapshot_sha256,
                "result": s.result,
            }
            for s in Submission.objects.filter(user=user).select_related("lab__course")
        ],
        "certificates": [
            {
                "id": c.public_id,
                "title": c.title,
                "issued_at": when(c.issued_at),
                "status": c.status,
                "public": c.public,
                "show_evidence": c.show_evidence,
            }
            for c in Certificate.objects.filter(user=user)
        ],
        "api_tokens": [
            {"name": t.name, "prefix": t.key_prefix, "created_at": when(t.created_at), "revoked_at": when(t.revoked_at)}
            for t in user.api_tokens.all()
        ],
    }


def user_delete(*, user: User) -> None:
    """Delete the account and everything personal. Certificates are revoked with
    the reason "withdrawn by holder" and kept, unlinked, so a verifier sees
    "revoked" rather than a certificate that silently vanished."""
    from django.db import transaction

    from certificates.models import Certificate
    from certificates.services import WITHDRAWN_BY_HOLDER, certificate_revoke

    with transaction.atomic():
        for certificate in Certificate.objects.filter(user=user):
            certificate_revoke(certificate=certificate, reason=WITHDRAWN_BY_HOLDER, by="holder")
        user.delete()
