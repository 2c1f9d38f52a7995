"""A learner's submissions in the account export and deletion (registered in
GradingConfig.ready())."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from django.db import transaction

from .models import Submission
from .retention import snapshot_delete_if_unused
from .services import submission_result_document
from .storage import store, upload_name


def _when(value) -> str | None:
    return value.isoformat() if value else None


def export(user) -> Iterator[tuple[str, Iterable[dict]]]:
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

    yield ("submissions", submissions())


def erase(user) -> None:
    """Rows cascade with the user; the learner's snapshot files go once that has
    committed (a file with the same bytes as another learner's submission stays)."""
    snapshots = set(
        Submission.objects.filter(user=user).exclude(snapshot_path="").values_list("snapshot_path", flat=True)
    )
    # Uploads still waiting for intake are the learner's alone.
    uploads = [
        upload_name(pk)
        for pk in Submission.objects.filter(user=user).exclude(upload_sha256="").values_list("pk", flat=True)
    ]

    # Files only after the rows are gone for good: a rollback must not leave rows
    # pointing at deleted snapshots.
    def delete_files() -> None:
        for name in sorted(snapshots):
            snapshot_delete_if_unused(name)
        for name in uploads:
            store().delete(name)

    transaction.on_commit(delete_files)
