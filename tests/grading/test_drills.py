"""Fault drills: real PostgreSQL, a private redis-server the test restarts, the real
Docker engine and real worker processes. Each asserts what the learner and the
instructor see afterwards: graded exactly once, nothing stuck, nothing left behind."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from datetime import timedelta

import pytest
import redis
from django.db import connection
from django.utils import timezone

from accounts.models import User
from config.celery import app
from grading import budget, services, tasks
from grading.models import Submission
from grading.sandbox import LABEL_INSTANCE, LABEL_RUN, Sandbox, _client
from tests.grading.test_worker import submit, wait_for
from tests.grading.tiny_lab import make_solution, write
from tests.grading.workers import Worker

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def lab(transactional_db, tmp_path):
    from courses.importer import content_import
    from labs.models import Lab
    from tests.grading.tiny_lab import make_tiny_course

    content_import(make_tiny_course(tmp_path / "content"))
    return Lab.objects.get(slug="tiny")


def learners(n: int) -> list[User]:
    return [User.objects.create_user(email=f"drill-{i}@example.com", password="x" * 12) for i in range(n)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateRedis:
    """A redis-server of our own on a loopback port, without persistence (the default
    of many deployments), that a drill can restart."""

    def __init__(self, workdir) -> None:
        self.port = _free_port()
        self.workdir = workdir
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
            + ["--save", "", "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL,
        )
        wait_for(lambda: self._pings(), 20, "the private redis-server")

    def _pings(self) -> bool:
        try:
            return bool(redis.Redis.from_url(self.url, socket_timeout=1).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
def private_broker(tmp_path, worker_env, settings):
    """Point this process's Celery producer and the workers at a private redis-server."""
    server = PrivateRedis(tmp_path)
    old = app.conf.broker_url
    settings.CELERY_BROKER_URL = server.url
    app.conf.broker_url = server.url
    app._pool = None  # the producer pool was built for the old URL
    app.amqp._producer_pool = None
    worker_env["REDIS_URL"] = server.url
    yield server
    app.conf.broker_url = old
    app._pool = None
    app.amqp._producer_pool = None
    server.stop()


def our_objects() -> tuple[list, list]:
    api = _client(None).api
    label = f"{LABEL_INSTANCE}={services.sandbox_instance()}"
    containers = api.containers(all=True, filters={"label": label})
    volumes = api.volumes(filters={"label": label}).get("Volumes") or []
    return containers, volumes


def assert_graded_once(submissions: list[Submission]) -> None:
    for submission in submissions:
        submission.refresh_from_db()
        assert (submission.status, submission.attempts, submission.score) == ("passed", 1, 100.0), submission.pk
        assert submission.result["status"] == "passed"
    assert not Submission.objects.active().exists()


def test_a_redis_restart_without_persistence_loses_no_queued_submission(lab, private_broker, worker_env, tmp_path):
    queued = [submit(user, lab, make_solution(tmp_path / user.email, "correct")) for user in learners(3)]
    waiting = tasks._queued_submission_ids()
    assert {str(s.pk) for s in queued} <= waiting
    # Waiting in the broker: the reaper leaves them alone, however long the backlog.
    later = timezone.now() + timedelta(seconds=budget.LOST_MESSAGE_S * 2)
    assert services.submissions_redispatch_lost(live_ids=waiting, now=later) == []

    private_broker.restart()
    assert tasks._queued_submission_ids() == set()  # the messages are gone
    # The next reaper tick after the overdue time sends them again.
    resent = services.submissions_redispatch_lost(live_ids=tasks._queued_submission_ids(), now=later)
    assert sorted(resent) == sorted(str(s.pk) for s in queued)

    worker = Worker(worker_env)
    try:
        wait_for(lambda: not Submission.objects.active().exists(), 120, "every verdict")
    finally:
        worker.stop()
    assert_graded_once(queued)


@pytest.fixture
def slow_lab(transactional_db, tmp_path):
    """The tiny lab with room for a 16 s stage (its run stage allows 10 s)."""
    from courses.importer import content_import
    from labs.models import Lab
    from tests.grading.tiny_lab import make_tiny_course

    root = make_tiny_course(tmp_path / "content")
    (spec,) = root.rglob("lab.yaml")
    spec.write_text(spec.read_text().replace("time_s: 10}", "time_s: 30}").replace("time_s: 20,", "time_s: 40,"))
    content_import(root)
    return Lab.objects.get(slug="tiny")


def test_a_killed_database_connection_mid_run_keeps_the_heartbeat_and_grades_once(slow_lab, worker_env, tmp_path):
    slow = tmp_path / "slow"
    write(
        slow / "main.py",
        """
        import json, time
        time.sleep(16)
        rows = json.load(open("data/input.json"))
        json.dump({"accuracy": 1.0, "predictions": rows}, open("out.json", "w"))
        """,
    )
    worker = Worker(worker_env)
    try:
        (user,) = learners(1)
        submission = submit(user, slow_lab, slow)

        def beating_in_stage_run() -> bool:
            row = Submission.objects.get(pk=submission.pk)
            return row.current_stage == "run" and row.heartbeat_at > row.stage_started_at + timedelta(seconds=1)

        # Once the heartbeat thread has its own connection open, kill every backend.
        wait_for(beating_in_stage_run, 120, "a heartbeat during stage run")
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"
            )
            assert len(cursor.fetchall()) >= 2, "the worker's main and heartbeat connections"
        killed_at = timezone.now()
        # The heartbeat reconnects and keeps beating while the same stage still runs.
        wait_for(
            lambda: Submission.objects.filter(
                pk=submission.pk, status="running", current_stage="run", heartbeat_at__gt=killed_at
            ).exists(),
            3 * budget.HEARTBEAT_INTERVAL_S,
            "a heartbeat after the connection was killed",
        )
        wait_for(lambda: Submission.objects.get(pk=submission.pk).finished, 120, "the verdict")
    finally:
        worker.stop()
    assert_graded_once([submission])


def test_the_reaper_removes_reference_runs_and_earlier_attempts_but_not_live_runs(lab, monkeypatch, tmp_path):
    (user,) = learners(1)
    submission = submit(user, lab, make_solution(tmp_path, "correct"))
    services.submission_claim(submission_id=submission.pk, worker="first")
    first = Submission.objects.get(pk=submission.pk)
    services.submissions_reap_stale(now=timezone.now() + timedelta(seconds=120))  # its worker died
    services.submission_claim(submission_id=submission.pk, worker="second")
    current = Submission.objects.get(pk=submission.pk)
    assert current.attempts == 2

    def left_running(run_id: str, owner: Submission) -> Sandbox:
        sandbox = Sandbox(
            run_id=run_id, image="shipwright-lab:py311", workspace_mb=16, labels=services.sandbox_labels(owner)
        )
        sandbox.__enter__()  # a worker that never got to __exit__
        return sandbox

    leaked = [
        left_running(services.run_id_for(first), first),
        left_running(f"reference-tiny-{first.pk.hex[:8]}", first),
    ]
    live = [
        left_running(services.run_id_for(current), current),
        left_running(f"reference-tiny-{current.pk.hex[:8]}", current),
    ]
    try:
        monkeypatch.setattr(budget, "ORPHAN_GRACE_S", 0.0)
        tasks.reap_stale_submissions()
        containers, volumes = our_objects()
        runs = {c["Labels"][LABEL_RUN] for c in containers} | {v["Labels"][LABEL_RUN] for v in volumes}
        assert runs == {sandbox.run_id for sandbox in live}
        # A run being set up is within the grace period and is never hit.
        monkeypatch.setattr(budget, "ORPHAN_GRACE_S", 120.0)
        Submission.objects.filter(pk=submission.pk).update(status="queued")
        tasks.reap_stale_submissions()
        assert len(our_objects()[0]) == len(containers)
    finally:
        for sandbox in leaked + live:
            sandbox.__exit__(None, None, None)
    assert our_objects() == ([], [])


def test_a_holder_stops_at_once_on_sigterm(lab):
    with Sandbox(run_id="drill-holder-term", image="shipwright-lab:py311", workspace_mb=16) as sandbox:
        api = sandbox.api
        holder = sandbox._holder
        api.kill(holder, signal="SIGTERM")
        # 143 = ended by TERM; `sleep` as PID 1 would ignore it (and be SIGKILLed: 137).
        assert api.wait(holder, timeout=30)["StatusCode"] == 143


def test_a_burst_from_several_learners_on_two_workers_is_graded_once_and_leaves_nothing(lab, worker_env, tmp_path):
    workers = [Worker(worker_env), Worker(worker_env)]
    try:
        burst = [
            submit(user, lab, make_solution(tmp_path / f"{user.pk}-{n}", "correct"))
            for user in learners(4)
            for n in range(2)
        ]
        wait_for(lambda: not Submission.objects.active().exists(), 150, "every verdict")
        time.sleep(1)  # the last run's teardown follows its verdict
    finally:
        for worker in workers:
            worker.stop()
    assert_graded_once(burst)
    wait_for(lambda: our_objects() == ([], []), 30, "every sandbox object removed")
