from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterator

from django.db import transaction
from django.utils import timezone

from . import hooks
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
    sections: dict = {
        "account": {
            "email": user.email,
            "display_name": user.display_name,
            "date_joined": _when(user.date_joined),
            "last_login": _when(user.last_login),
        },
    }
    for exporter in hooks.account_exporters:
        sections.update(exporter(user))
    sections["api_tokens"] = (
        {
            "name": t.name,
            "prefix": t.key_prefix,
            "created_at": _when(t.created_at),
            "revoked_at": _when(t.revoked_at),
        }
        for t in user.api_tokens.all().iterator()
    )
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
    silently vanished, and nothing public names the person any more. Each app's part
    is registered in accounts.hooks.account_erasers."""
    with transaction.atomic():
        for eraser in hooks.account_erasers:
            eraser(user)
        user.delete()
