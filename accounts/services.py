from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterator

from django.db import transaction
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


def _when(value) -> str | None:
    return value.isoformat() if value else None


def user_data_export_chunks(*, user: User) -> Iterator[str]:
    """Everything Shipwright holds about `user` (GDPR access), as the pieces of one
    JSON document, produced as they are read: a learner with hundreds of attempts
    of 1 MiB stage output each is never held in memory at once."""
    from certificates.models import Certificate
    from courses.models import Enrollment, LessonProgress, QuizAttempt
    from grading.models import Submission
    from grading.services import submission_result_document

    def submissions():
        rows = Submission.objects.filter(user=user).select_related("lab__course").order_by("created_at")
        for s in rows.iterator(chunk_size=20):
            yield {
                "id": str(s.pk),
                "lab": s.lab.full_slug,
                "created_at": _when(s.created_at),
                "status": s.status,
                "source": s.source_name,
                "commit": s.commit or None,
                "source_sha256": s.snapshot_sha256,
                "result": submission_result_document(s) if s.finished else None,
            }

    sections = {
        "account": {
            "email": user.email,
            "display_name": user.display_name,
            "date_joined": _when(user.date_joined),
            "last_login": _when(user.last_login),
        },
        "enrollments": (
            {"course": e.course.slug, "enrolled_at": _when(e.created_at), "last_page": e.last_url}
            for e in Enrollment.objects.filter(user=user).select_related("course").iterator()
        ),
        "lessons_read": (
            {
                "lesson": f"{p.lesson.module.course.slug}/{p.lesson.module.slug}/{p.lesson.slug}",
                "at": _when(p.completed_at),
            }
            for p in LessonProgress.objects.filter(user=user).select_related("lesson__module__course").iterator()
        ),
        "knowledge_checks": (
            {
                "module": f"{a.module.course.slug}/{a.module.slug}",
                "correct": a.correct,
                "total": a.total,
                "passed": a.passed,
                "answers": a.answers,
                "at": _when(a.created_at),
            }
            for a in QuizAttempt.objects.filter(user=user).select_related("module__course").iterator()
        ),
        "submissions": submissions(),
        "certificates": (
            {
                "id": c.public_id,
                "title": c.title,
                "issued_at": _when(c.issued_at),
                "status": c.status,
                "public": c.public,
                "show_evidence": c.show_evidence,
            }
            for c in Certificate.objects.filter(user=user).iterator()
        ),
        "api_tokens": (
            {
                "name": t.name,
                "prefix": t.key_prefix,
                "created_at": _when(t.created_at),
                "revoked_at": _when(t.revoked_at),
            }
            for t in user.api_tokens.all().iterator()
        ),
    }
    yield "{"
    for position, (key, value) in enumerate(sections.items()):
        yield ("," if position else "") + f"\n{json.dumps(key)}: "
        if isinstance(value, dict):
            yield json.dumps(value)
            continue
        yield "["
        for index, item in enumerate(value):
            yield ("," if index else "") + "\n  " + json.dumps(item)
        yield "]"
    yield "\n}\n"


def user_delete(*, user: User) -> None:
    """Delete the account and everything personal: rows (submissions with their stage
    output and checks cascade), and, once that has committed, the learner's snapshot
    files on disk (a file with the same bytes as another learner's submission stays
    for them). Certificates are revoked with the reason "withdrawn by holder" and
    kept, unlinked and without the holder's name, evidence or signed credential (it
    names the holder), so a verifier sees "revoked" rather than a certificate that
    silently vanished, and nothing public names the person any more."""
    from certificates.models import Certificate
    from certificates.services import WITHDRAWN_BY_HOLDER, certificate_revoke
    from grading.models import Submission
    from grading.retention import snapshot_delete_if_unused

    with transaction.atomic():
        for certificate in Certificate.objects.filter(user=user):
            certificate_revoke(certificate=certificate, reason=WITHDRAWN_BY_HOLDER, by="holder")
        Certificate.objects.filter(user=user).update(holder_name="", evidence=[], credential="")
        snapshots = set(
            Submission.objects.filter(user=user).exclude(snapshot_path="").values_list("snapshot_path", flat=True)
        )
        user.delete()
        # Files only after the rows are gone for good: a rollback must not leave rows
        # pointing at deleted snapshots.
        transaction.on_commit(lambda: [snapshot_delete_if_unused(name) for name in sorted(snapshots)])
