"""Real Celery workers, real Redis, real Docker: queueing, crashes and retries."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from accounts.models import User
from grading import services
from grading.intake import snapshot_from_directory
from grading.models import Submission
from grading.sandbox import LABEL_RUN, _client
from tests.grading.tiny_lab import make_solution, make_tiny_course, write
from tests.grading.workers import Worker

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def lab(transactional_db, tmp_path):
    from courses.importer import content_import
    from labs.models import Lab

    content_import(make_tiny_course(tmp_path / "content"))
    return Lab.objects.get(slug="tiny")


@pytest.fixture
def learner_user(transactional_db):
    return User.objects.create_user(email="worker-test@example.com", password="x" * 12, display_name="Worker Test")


def submit(user, lab, folder: Path) -> Submission:
    snapshot = snapshot_from_directory(folder, dest_dir=services.snapshot_dir(), limits=services.intake_limits())
    return services.submission_create(user=user, lab=lab, snapshot=snapshot, enforce_limits=False)


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_submission_is_graded_by_a_real_worker(lab, learner_user, worker_env, tmp_path):
    worker = Worker(worker_env)
    try:
        submission = submit(learner_user, lab, make_solution(tmp_path, "correct"))
        wait_for(lambda: Submission.objects.get(pk=submission.pk).finished, 240, "the verdict")
        submission.refresh_from_db()
        assert submission.status == Submission.Status.PASSED
        assert submission.result["status"] == "passed"
        assert submission.attempts == 1
        # The pass completed the course: the signing queue (this worker serves it too,
        # as under `make run`) issues the certificate into the stored result.
        wait_for(lambda: Submission.objects.get(pk=submission.pk).result["certificate"], 60, "the certificate")
        submission.refresh_from_db()
        assert submission.result["certificate"]["url"].startswith("/verify/")
    finally:
        worker.stop()


def test_a_worker_killed_mid_grade_leaves_nothing_lost_or_stuck(lab, learner_user, worker_env, tmp_path):
    slow = tmp_path / "slow"
    write(
        slow / "main.py",
        """
        import json, time
        time.sleep(6)
        rows = json.load(open("data/input.json"))
        json.dump({"accuracy": 1.0, "predictions": rows}, open("out.json", "w"))
        """,
    )
    first = Worker(worker_env)
    second = None
    try:
        submission = submit(learner_user, lab, slow)
        wait_for(lambda: Submission.objects.filter(pk=submission.pk, current_stage="run").exists(), 240, "stage run")
        first.kill()
        submission.refresh_from_db()
        assert submission.status == Submission.Status.RUNNING
        dead_run = services.run_id_for(submission)
        # Later, the periodic reaper sees the heartbeat has stopped.
        acted = services.submissions_reap_stale(now=timezone.now() + timedelta(seconds=120))
        assert str(submission.pk) in acted
        assert not _client(None).api.containers(all=True, filters={"label": f"{LABEL_RUN}={dead_run}"})
        second = Worker(worker_env)
        wait_for(lambda: Submission.objects.get(pk=submission.pk).finished, 300, "the regrade")
        submission.refresh_from_db()
        assert submission.status == Submission.Status.PASSED
        assert submission.attempts == 2
    finally:
        first.stop()
        if second:
            second.stop()


def test_an_unreachable_engine_is_retried_then_reported_not_charged(lab, learner_user, worker_env, tmp_path):
    worker = Worker(
        worker_env,
        DOCKER_HOST="unix:///nonexistent/docker.sock",
        SHIPWRIGHT_MAX_ATTEMPTS="2",
        SHIPWRIGHT_PLATFORM_RETRIES="1",
    )
    try:
        submission = submit(learner_user, lab, make_solution(tmp_path, "correct"))
        wait_for(
            lambda: Submission.objects.filter(pk=submission.pk, attempts=1, status="queued").exists(),
            60,
            "the first platform failure",
        )
        assert "Grading is delayed" in Submission.objects.get(pk=submission.pk).error_message
        wait_for(lambda: Submission.objects.get(pk=submission.pk).finished, 90, "giving up")
        submission.refresh_from_db()
        assert submission.status == Submission.Status.ERROR
        assert submission.attempts == 2
        assert "does not count against you" in submission.error_message
    finally:
        worker.stop()


def test_a_redelivered_message_does_nothing(lab, learner_user, tmp_path):
    submission = submit(learner_user, lab, make_solution(tmp_path, "crashes"))
    Submission.objects.filter(pk=submission.pk).update(status=Submission.Status.FAILED)
    assert services.submission_grade(submission.pk) is None
    submission.refresh_from_db()
    assert submission.attempts == 0


def test_the_time_budget_orders_its_limits():
    from grading.budget import VISIBILITY_TIMEOUT_S, grading_budget
    from labs.lab_spec import LabSpec

    spec = LabSpec.model_validate(
        {
            "slug": "x",
            "title": "x",
            "module": "m",
            "kind": "repo",
            "instructions": "i.md",
            "pass_mark": 50,
            "stages": [{"name": "a", "run": ["true"], "time_s": 300}, {"name": "b", "run": ["true"]}],
            "checks": [{"name": "a", "kind": "exit_code", "stage": "a", "points": 1}],
        }
    )
    budget = grading_budget(spec)
    assert 600 < budget.stages_s < budget.soft_s < budget.hard_s < VISIBILITY_TIMEOUT_S
    assert settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] == VISIBILITY_TIMEOUT_S
