"""Retention: storage that does not grow without end.

A superseded attempt (finished longer ago than the retention period, not the
learner's best for its lab and not backing a certificate) loses its source
snapshot, its stages' output and (a notebook lab's) its executed notebook; its row, scores and check feedback stay, so
progress pages, grade exports and certificates are unchanged. Run daily by Celery
beat (`grading.prune_submissions`) and by `manage.py prune_submissions`.

Snapshots are content-addressed (`<sha256>.tar.gz`): two submissions of the same
bytes share one file, which is deleted only once no submission refers to it.
Deletion goes through the snapshot store (grading/storage.py), so it works the same
on the local directory and on an object store.
Everything here is idempotent: a second run finds nothing left to do.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from . import hooks, storage
from .models import ExecutedNotebook, StageRun, Submission

log = logging.getLogger(__name__)

PRUNED_OUTPUT = "(output removed by the retention policy: this attempt was superseded)"
PRUNED_NOTEBOOK = "The executed notebook was removed by the retention policy: this attempt was superseded."
# A snapshot file written or touched this recently is never deleted: it may belong to
# an upload whose submission row is being created right now (intake reuses an
# existing file with the same content before the row exists).
SNAPSHOT_GRACE_S = 3600


@dataclass
class PruneReport:
    submissions: int = 0
    snapshots: int = 0
    snapshot_bytes: int = 0
    stage_outputs: int = 0
    stage_output_bytes: int = 0
    notebooks: int = 0
    notebook_bytes: int = 0
    kept: int = 0
    results_compacted: int = 0
    snapshot_names: set[str] = field(default_factory=set)

    def lines(self, *, dry_run: bool) -> list[str]:
        verb = "would delete" if dry_run else "deleted"
        return [
            f"superseded attempts: {self.submissions} (kept: {self.kept} best or certificate-backing attempts)",
            f"snapshots {verb}: {self.snapshots} ({self.snapshot_bytes} bytes)",
            f"stage outputs {verb}: {self.stage_outputs} ({self.stage_output_bytes} bytes)",
            f"executed notebooks {verb}: {self.notebooks} ({self.notebook_bytes} bytes)",
            f"result documents {'to compact' if dry_run else 'compacted'}: {self.results_compacted} "
            "(written before stage output was stored once)",
        ]


def _percent(score: float | None, max_score: float | None) -> float:
    if score is None or not max_score:
        return -1.0
    return 100.0 * score / max_score


def kept_submission_ids() -> set:
    """Finished attempts that are never pruned: each learner's best per lab (passed
    first, then the highest percentage, then the newest: the attempt the lab page
    and the certificate rule pick) and every attempt an app above grading asks to
    keep (certificates: the attempts matching a certificate's evidence, see
    grading.hooks.kept_submission_ids)."""
    best: dict[tuple[int, int], tuple[tuple, object]] = {}
    # A rejected source was never graded: it can be no one's best attempt.
    finished = Submission.objects.filter(status__in=Submission.FINISHED).exclude(status=Submission.Status.REJECTED)
    rows = finished.values_list("pk", "user_id", "lab_id", "status", "score", "max_score", "created_at")
    for pk, user_id, lab_id, status, score, max_score, created_at in rows.iterator(chunk_size=2000):
        key = (status == Submission.Status.PASSED, _percent(score, max_score), created_at)
        current = best.get((user_id, lab_id))
        if current is None or key > current[0]:
            best[(user_id, lab_id)] = (key, pk)
    kept = {pk for _, pk in best.values()}
    for hook in hooks.kept_submission_ids:
        kept.update(hook())
    return kept


def superseded(*, older_than_days: int, now=None) -> tuple[list, int]:
    """Ids of the finished attempts older than the period that are not kept and still
    hold a snapshot, stage output or an executed notebook; and how many old attempts
    were kept."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=older_than_days)
    kept = kept_submission_ids()
    old = Submission.objects.filter(status__in=Submission.FINISHED, finished_at__lt=cutoff)
    with_output = set(_live_outputs().filter(submission__in=old).values_list("submission_id", flat=True).distinct())
    with_output.update(_live_notebooks().filter(submission__in=old).values_list("submission_id", flat=True))
    candidates, kept_count = [], 0
    for pk, path in old.values_list("pk", "snapshot_path").iterator(chunk_size=2000):
        if pk in kept:
            kept_count += 1
        elif path or pk in with_output:
            candidates.append(pk)
    return candidates, kept_count


def _live_outputs():
    return StageRun.objects.exclude(output="").exclude(output=PRUNED_OUTPUT)


def _live_notebooks():
    return ExecutedNotebook.objects.exclude(ipynb="", html="")


def compact_result_documents(*, dry_run: bool = False) -> int:
    """Re-save result documents written before stage output was stored once (they
    still carry `stages[].output`); Submission.save drops the copy. Returns how many."""
    legacy = Submission.objects.filter(result__stages__0__has_key="output")
    count = 0
    for submission in legacy.only("pk", "result").iterator(chunk_size=50):
        count += 1
        if not dry_run:
            submission.save(update_fields=["result"])
    return count


def _deletable(name: str) -> bool:
    age = storage.store().age_s(name)
    return age is not None and age > SNAPSHOT_GRACE_S


def _delete(name: str) -> None:
    """Delete through the store (local directory or object store) and drop this
    host's cached copy."""
    storage.store().delete(name)
    storage.drop_cached(name)


def prune(*, older_than_days: int, dry_run: bool = False, now=None) -> PruneReport:
    """Remove the snapshots, stage output and executed notebooks of superseded attempts (see the module
    docstring). With dry_run, changes nothing and reports what it would delete."""
    if older_than_days <= 0:
        raise ValueError("older_than_days must be positive")
    report = PruneReport(results_compacted=compact_result_documents(dry_run=dry_run))
    ids, report.kept = superseded(older_than_days=older_than_days, now=now)
    report.submissions = len(ids)
    for start in range(0, len(ids), 200):
        chunk = ids[start : start + 200]
        for output in (
            _live_outputs().filter(submission_id__in=chunk).values_list("output", flat=True).iterator(chunk_size=20)
        ):
            report.stage_outputs += 1
            report.stage_output_bytes += len(output.encode())
        for ipynb, html in _live_notebooks().filter(submission_id__in=chunk).values_list("ipynb", "html"):
            report.notebooks += 1
            report.notebook_bytes += len(ipynb.encode()) + len(html.encode())
        names = set(
            Submission.objects.filter(pk__in=chunk).exclude(snapshot_path="").values_list("snapshot_path", flat=True)
        )
        if not dry_run:
            with transaction.atomic():
                _live_outputs().filter(submission_id__in=chunk).update(output=PRUNED_OUTPUT, output_truncated_bytes=0)
                # The row stays with a note, so the page says why there is no notebook.
                _live_notebooks().filter(submission_id__in=chunk).update(
                    ipynb="", html="", flagged_cell=None, flag="", note=PRUNED_NOTEBOOK
                )
                # The row keeps snapshot_sha256 (provenance); an empty path says the
                # bytes are gone, so the attempt can no longer be regraded.
                Submission.objects.filter(pk__in=chunk).update(snapshot_path="")
        for name in sorted(names):
            # Shared content: another submission (kept, recent or in flight) still
            # needs the file. In a dry run the chunk's own rows still name it.
            users = Submission.objects.filter(snapshot_path=name)
            if dry_run:
                users = users.exclude(pk__in=ids)
            if users.exists() or name in report.snapshot_names or not _deletable(name):
                continue
            report.snapshots += 1
            report.snapshot_bytes += storage.store().size(name)
            report.snapshot_names.add(name)
            if not dry_run:
                _delete(name)
    log.info(
        "retention (%s days%s): %s",
        older_than_days,
        ", dry run" if dry_run else "",
        "; ".join(report.lines(dry_run=dry_run)),
    )
    return report


def snapshot_delete_if_unused(name: str) -> int:
    """Delete the snapshot file `name` unless a submission still refers to it (the
    same bytes submitted by someone else); returns the bytes freed. Idempotent."""
    try:
        storage.check_name(name)
    except ValueError:
        return 0
    if name.startswith("uploads/") or Submission.objects.filter(snapshot_path=name).exists():
        return 0
    size = storage.store().size(name)
    _delete(name)
    return size
