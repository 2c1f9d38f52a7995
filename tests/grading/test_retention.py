"""Retention: superseded attempts lose their snapshot and stage output; the best
attempt and certificate evidence stay (issue 8, section 5). Real files on disk."""

from __future__ import annotations

import hashlib
import io
import os
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from certificates.services import certificate_award_if_complete
from grading import retention, tasks
from grading.management.commands.prune_submissions import RETENTION_OFF
from grading.models import StageRun, Submission

DAY = timedelta(days=1)


@pytest.fixture
def snapshots(settings, tmp_path):
    settings.SHIPWRIGHT_SNAPSHOT_DIR = tmp_path / "snapshots"
    settings.SHIPWRIGHT_SNAPSHOT_DIR.mkdir()
    return settings.SHIPWRIGHT_SNAPSHOT_DIR


def snapshot(folder, content: bytes, *, age_s: float = 10 * 86400) -> str:
    """A content-addressed snapshot file, as intake writes it, last touched `age_s` ago."""
    name = hashlib.sha256(content).hexdigest() + ".tar.gz"
    path = folder / name
    path.write_bytes(content)
    old = time.time() - age_s
    os.utime(path, (old, old))
    return name


def attempt(user, lab, name, *, score, days_ago, status=None, output="", lab_hash=None) -> Submission:
    finished = timezone.now() - days_ago * DAY
    submission = Submission.objects.create(
        user=user,
        lab=lab,
        source_kind="archive",
        snapshot_path=name,
        snapshot_sha256=name[:64],
        status=status or (Submission.Status.PASSED if score >= 60 else Submission.Status.FAILED),
        score=score,
        max_score=100.0,
        lab_hash=lab_hash if lab_hash is not None else lab.content_hash,
        started_at=finished,
        finished_at=finished,
    )
    if output:
        StageRun.objects.create(submission=submission, order=0, name="run", command="python main.py", status="ran")
        StageRun.objects.filter(submission=submission).update(output=output)
    return submission


def prune_command(*args: str) -> str:
    out = io.StringIO()
    call_command("prune_submissions", *args, stdout=out)
    return out.getvalue()


def test_a_dry_run_reports_counts_and_bytes_then_pruning_deletes_only_superseded_attempts(
    tiny_lab, learner, other_learner, snapshots
):
    first = snapshot(snapshots, b"first try" * 100)  # 900 bytes
    shared = snapshot(snapshots, b"shared code" * 10)
    best = snapshot(snapshots, b"the passing one")
    superseded = attempt(learner, tiny_lab, first, score=20, days_ago=100, output="x" * 1000)
    also_superseded = attempt(learner, tiny_lab, shared, score=40, days_ago=90, output="é" * 500)
    kept = attempt(learner, tiny_lab, best, score=100, days_ago=80, output="done")
    # Another learner's best attempt has the same bytes (content-addressed): the file stays.
    neighbour = attempt(other_learner, tiny_lab, shared, score=30, days_ago=85)

    report = prune_command("--dry-run", "--days", "30")
    assert "Dry run: nothing was deleted." in report
    assert "superseded attempts: 2 (kept: 2 best or certificate-backing attempts)" in report
    assert "snapshots would delete: 1 (900 bytes)" in report
    assert "stage outputs would delete: 2 (2000 bytes)" in report
    assert (snapshots / first).exists() and Submission.objects.exclude(snapshot_path="").count() == 4

    report = prune_command("--days", "30")
    assert "snapshots deleted: 1 (900 bytes)" in report
    assert "stage outputs deleted: 2 (2000 bytes)" in report
    assert not (snapshots / first).exists()
    assert (snapshots / shared).exists() and (snapshots / best).exists()
    for submission in (superseded, also_superseded):
        submission.refresh_from_db()
        assert submission.snapshot_path == "" and submission.score is not None
        assert submission.stage_runs.get().output == retention.PRUNED_OUTPUT
    kept.refresh_from_db()
    assert kept.snapshot_path == best and kept.stage_runs.get().output == "done"
    neighbour.refresh_from_db()
    assert neighbour.snapshot_path == shared

    # Idempotent: nothing is left to delete.
    again = prune_command("--days", "30")
    assert "superseded attempts: 0" in again and "snapshots deleted: 0 (0 bytes)" in again


def test_the_shared_snapshot_goes_once_its_last_user_is_pruned(tiny_lab, learner, snapshots):
    shared = snapshot(snapshots, b"same bytes twice")
    attempt(learner, tiny_lab, shared, score=10, days_ago=60)
    attempt(learner, tiny_lab, shared, score=20, days_ago=50)
    attempt(learner, tiny_lab, snapshot(snapshots, b"best"), score=90, days_ago=40)
    report = retention.prune(older_than_days=30)
    assert report.submissions == 2 and report.snapshots == 1 and report.snapshot_bytes == 16
    assert not (snapshots / shared).exists()


def test_recent_attempts_and_attempts_in_flight_are_untouched(tiny_lab, learner, snapshots):
    recent = attempt(learner, tiny_lab, snapshot(snapshots, b"recent"), score=10, days_ago=5, output="out")
    running = attempt(
        learner, tiny_lab, snapshot(snapshots, b"running"), score=0, days_ago=0, status=Submission.Status.RUNNING
    )
    Submission.objects.filter(pk=running.pk).update(finished_at=None, score=None)
    attempt(learner, tiny_lab, snapshot(snapshots, b"best"), score=90, days_ago=100)
    report = retention.prune(older_than_days=30)
    assert report.submissions == 0
    assert Submission.objects.filter(snapshot_path="").count() == 0
    assert recent.stage_runs.get().output == "out"


def test_a_freshly_touched_snapshot_file_is_not_deleted(tiny_lab, learner, snapshots):
    # Intake may be reusing this very file for a new upload whose row is not written yet.
    fresh = snapshot(snapshots, b"uploaded again just now", age_s=5)
    attempt(learner, tiny_lab, fresh, score=10, days_ago=60)
    attempt(learner, tiny_lab, snapshot(snapshots, b"best"), score=90, days_ago=60)
    report = retention.prune(older_than_days=30)
    assert report.submissions == 1 and report.snapshots == 0
    assert (snapshots / fresh).exists()


def test_the_attempt_backing_a_certificate_is_kept_after_a_better_one(tiny_lab, learner, snapshots):
    evidence = attempt(learner, tiny_lab, snapshot(snapshots, b"passed at 70"), score=70, days_ago=200)
    certificate = certificate_award_if_complete(user=learner, course=tiny_lab.course)
    assert certificate is not None and certificate.evidence[0]["score"] == 70
    better = attempt(learner, tiny_lab, snapshot(snapshots, b"passed at 95"), score=95, days_ago=100)
    failed = attempt(learner, tiny_lab, snapshot(snapshots, b"failed later"), score=10, days_ago=90)
    report = retention.prune(older_than_days=30)
    assert report.submissions == 1 and report.kept == 2
    pruned = set(Submission.objects.filter(snapshot_path="").values_list("pk", flat=True))
    assert pruned == {failed.pk}
    assert {evidence.pk, better.pk} <= set(Submission.objects.exclude(snapshot_path="").values_list("pk", flat=True))


def test_with_retention_off_the_periodic_task_and_the_command_delete_nothing(tiny_lab, learner, snapshots, settings):
    settings.SHIPWRIGHT_RETENTION_DAYS = 0
    old = snapshot(snapshots, b"old")
    attempt(learner, tiny_lab, old, score=10, days_ago=3000, output="x")
    attempt(learner, tiny_lab, snapshot(snapshots, b"best"), score=90, days_ago=3000)
    assert tasks.prune_submissions() == {}
    assert RETENTION_OFF in prune_command()
    assert (snapshots / old).exists() and not Submission.objects.filter(snapshot_path="").exists()


def test_the_periodic_task_prunes_with_the_configured_period(tiny_lab, learner, snapshots, settings):
    settings.SHIPWRIGHT_RETENTION_DAYS = 30
    old = snapshot(snapshots, b"old")
    attempt(learner, tiny_lab, old, score=10, days_ago=31)
    attempt(learner, tiny_lab, snapshot(snapshots, b"best"), score=90, days_ago=31)
    assert tasks.prune_submissions()["snapshots"] == 1
    assert not (snapshots / old).exists()


def test_result_documents_from_before_storing_output_once_are_compacted(tiny_lab, learner, snapshots):
    submission = attempt(learner, tiny_lab, snapshot(snapshots, b"a"), score=90, days_ago=1)
    legacy = {"status": "passed", "stages": [{"name": "run", "exit_code": 0, "output": "y" * 50_000}]}
    Submission.objects.filter(pk=submission.pk).update(result=legacy)  # as written by older code
    assert "result documents to compact: 1" in prune_command("--dry-run")
    assert "result documents compacted: 1" in prune_command()
    submission.refresh_from_db()
    assert submission.result == {"status": "passed", "stages": [{"name": "run", "exit_code": 0}]}
    assert "result documents compacted: 0" in prune_command()


def test_a_superseded_attempt_loses_its_executed_notebook_and_the_best_keeps_it(tiny_lab, learner, snapshots, client):
    from grading.models import ExecutedNotebook

    superseded = attempt(learner, tiny_lab, snapshot(snapshots, b"old"), score=20, days_ago=100)
    best = attempt(learner, tiny_lab, snapshot(snapshots, b"best"), score=100, days_ago=90)
    for submission in (superseded, best):
        ExecutedNotebook.objects.create(
            submission=submission, ipynb='{"cells": []}', html="<p>NOTEBOOK-OUTPUT</p>", finished=True
        )

    report = prune_command("--dry-run", "--days", "30")
    assert "executed notebooks would delete: 1 (35 bytes)" in report
    assert ExecutedNotebook.objects.get(submission=superseded).html

    report = prune_command("--days", "30")
    assert "superseded attempts: 1" in report and "executed notebooks deleted: 1 (35 bytes)" in report
    gone = ExecutedNotebook.objects.get(submission=superseded)
    assert gone.ipynb == "" and gone.html == "" and gone.note == retention.PRUNED_NOTEBOOK
    assert ExecutedNotebook.objects.get(submission=best).html == "<p>NOTEBOOK-OUTPUT</p>"

    client.force_login(learner)
    page = client.get(superseded.get_absolute_url()).content.decode()
    assert retention.PRUNED_NOTEBOOK in page and "NOTEBOOK-OUTPUT" not in page
    assert client.get(f"/submissions/{superseded.pk}/notebook.ipynb").status_code == 404
    assert "executed notebooks deleted: 0" in prune_command("--days", "30")
