"""Fault drills: real PostgreSQL, a private redis-server the test restarts, the real
Docker engine and real worker processes. Each asserts what the learner and the
instructor see afterwards: graded exactly once, nothing stuck, nothing left behind."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from django.db import connection
from django.test import Client
from django.utils import timezone
from django.utils.html import escape

from accounts.models import User
from accounts.services import api_token_create
from config.celery import app
from grading import budget, services, tasks
from grading.models import Submission
from grading.sandbox import LABEL_INSTANCE, LABEL_ROLE, LABEL_RUN, LABEL_SUBMISSION, Sandbox, _client
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
    return [
        User.objects.create_user(email=f"drill-{i}@example.com", password="x" * 12, display_name=f"Drill {i}")
        for i in range(n)
    ]


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


ENGINE_SOCKET = "/var/run/docker.sock"


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in recv (close would not)
    except OSError:
        pass


class EngineProxy:
    """A unix socket that forwards each connection to the Docker engine's socket, byte
    for byte in both directions (attach, wait and stats are hijacked or streamed HTTP
    that stays open for a whole stage: a plain pump carries them all). It stages an
    engine outage on a shared engine that others are using: `cut()` removes the socket
    and cuts every live connection, as an engine restart does to its clients;
    `restore()` listens again."""

    def __init__(self, path: Path, engine: str = ENGINE_SOCKET) -> None:
        self.path = path
        self.engine = engine
        self.url = f"unix://{path}"
        self._lock = threading.Lock()
        self._live: set[socket.socket] = set()
        self._serving = threading.Event()
        self._acceptor: threading.Thread | None = None
        self.restore()

    def restore(self) -> None:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.path))
        listener.listen(128)
        listener.settimeout(0.2)  # the accept loop notices a cut within this
        self._serving = serving = threading.Event()
        serving.set()
        self._acceptor = threading.Thread(target=self._accept, args=(listener, serving), daemon=True)
        self._acceptor.start()

    def cut(self) -> None:
        """Refuse new connections and cut the live ones. Idempotent."""
        with self._lock:
            self._serving.clear()
        if self._acceptor is not None:
            self._acceptor.join(timeout=5)
        self.path.unlink(missing_ok=True)
        self.drop_connections()

    def drop_connections(self) -> None:
        """Cut the live connections only: new ones are still forwarded at once."""
        with self._lock:
            live = list(self._live)
        for sock in live:
            _shut(sock)

    def _accept(self, listener: socket.socket, serving: threading.Event) -> None:
        with listener:
            while serving.is_set():
                try:
                    client, _ = listener.accept()
                except TimeoutError:
                    continue
                except OSError:
                    return
                client.settimeout(None)
                upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    upstream.connect(self.engine)
                except OSError:
                    client.close()
                    upstream.close()
                    continue
                with self._lock:
                    if not serving.is_set():  # cut while this one was being accepted
                        client.close()
                        upstream.close()
                        return
                    self._live.update((client, upstream))
                ended: list[socket.socket] = []
                for src, dst in ((client, upstream), (upstream, client)):
                    threading.Thread(target=self._pump, args=(src, dst, ended), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, ended: list[socket.socket]) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)  # pass a half-close on; the other direction goes on
        except OSError:
            _shut(src)
            _shut(dst)
        with self._lock:
            ended.append(src)
            if len(ended) == 2:  # both directions are done: the connection is over
                for sock in (src, dst):
                    self._live.discard(sock)
                    sock.close()


def test_the_default_platform_retries_outlast_an_engine_restart_of_several_minutes(settings):
    # What an operator relies on: from the first failure to giving up, the retries of
    # the default budget wait this long, so a restart of a few minutes costs nothing.
    waits = [budget.platform_backoff_s(n) for n in range(1, settings.SHIPWRIGHT_PLATFORM_RETRIES + 1)]
    assert sum(waits) > 5 * 60
    assert max(waits) <= budget.PLATFORM_BACKOFF_MAX_S  # a learner never waits longer for one retry


def test_a_shorter_first_backoff_still_doubles_up_to_the_cap(settings):
    settings.SHIPWRIGHT_PLATFORM_BACKOFF_FIRST_S = 1.0
    assert [budget.platform_backoff_s(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert budget.platform_backoff_s(20) == budget.PLATFORM_BACKOFF_MAX_S


OUTAGE_S = 30.0
SLOW_SOLUTION = """
    import json, time
    time.sleep(8)
    rows = json.load(open("data/input.json"))
    json.dump({"accuracy": 1.0, "predictions": rows}, open("out.json", "w"))
    """


@pytest.fixture
def engine_proxy(monkeypatch):
    """An EngineProxy in front of the shared engine; this process (the reaper, run here
    as beat would) talks to the engine through it too. Always stopped afterwards."""
    # A unix socket path is at most 107 bytes: pytest's tmp_path can be longer.
    folder = Path(tempfile.mkdtemp(prefix="shipwright-engine-", dir="/tmp"))
    proxy = EngineProxy(folder / "docker.sock")
    try:
        monkeypatch.setenv("DOCKER_HOST", proxy.url)
        monkeypatch.setenv("DOCKER_API_VERSION", "1.41")
        # Objects of a cut attempt are removed soon after the engine is back (a run
        # being set up is a second old at most: well within this).
        monkeypatch.setattr(budget, "ORPHAN_GRACE_S", 5.0)
        yield proxy
    finally:
        proxy.cut()
        shutil.rmtree(folder, ignore_errors=True)


def engine_worker(worker_env, proxy: EngineProxy) -> Worker:
    """A worker that reaches the engine through `proxy`, with a 1 s first backoff so
    the drill takes seconds (the default's schedule is tested above)."""
    return Worker(worker_env, DOCKER_HOST=proxy.url, DOCKER_API_VERSION="1.41", SHIPWRIGHT_PLATFORM_BACKOFF_FIRST_S="1")


def stage_running(submission: Submission, stage: str) -> bool:
    """The learner's code is running in `stage` now (its container is up)."""
    if Submission.objects.get(pk=submission.pk).current_stage != stage:
        return False
    filters = {"label": [f"{LABEL_SUBMISSION}={submission.pk}", f"{LABEL_ROLE}=stage"], "status": "running"}
    return bool(_client(None).api.containers(filters=filters))


class Reaper:
    """Ticks the reaper every couple of seconds, as Celery beat would."""

    def __init__(self) -> None:
        self.last = 0.0

    def tick(self) -> None:
        if time.monotonic() - self.last > 2:
            tasks.reap_stale_submissions()
            self.last = time.monotonic()


def test_an_engine_outage_mid_run_and_while_queued_costs_the_learners_nothing(
    slow_lab, private_broker, worker_env, engine_proxy, tmp_path
):
    write(tmp_path / "slow" / "main.py", SLOW_SOLUTION)
    mid_run, queued_before, submitted_during = learners(3)
    tokens = {user.pk: api_token_create(user=user, name="CI")[1] for user in (mid_run, queued_before, submitted_during)}
    seen: dict[str, set[tuple[str, str]]] = {}
    messages: set[str] = set()
    submissions: list[Submission] = []
    reaper = Reaper()

    def watch() -> None:
        """What each learner's API client sees now; and a reaper tick."""
        for submission in submissions:
            document = (
                Client()
                .get(f"/api/v1/submissions/{submission.pk}", HTTP_AUTHORIZATION=f"Bearer {tokens[submission.user_id]}")
                .json()
            )
            assert document["status"] != "error", document  # fail at once, with what the learner saw
            seen.setdefault(str(submission.pk), set()).add((document["status"], document.get("status_detail", "")))
        messages.update(
            Submission.objects.filter(pk__in=[s.pk for s in submissions]).values_list("error_message", flat=True)
        )
        reaper.tick()

    def watching(predicate):
        def check():
            watch()
            return predicate()

        return check

    def all_delayed() -> bool:
        rows = Submission.objects.filter(pk__in=[s.pk for s in submissions])
        return all(
            row.status == "queued" and row.error_message == services.GRADING_DELAYED and row.platform_errors
            for row in rows
        )

    worker = engine_worker(worker_env, engine_proxy)
    try:
        submissions.append(submit(mid_run, slow_lab, tmp_path / "slow"))
        submissions.append(submit(queued_before, slow_lab, make_solution(tmp_path / "before", "correct")))
        first = submissions[0]
        wait_for(watching(lambda: stage_running(first, "run")), 120, "the learner's code running in stage run")
        cut_run = services.run_id_for(Submission.objects.get(pk=first.pk))

        engine_proxy.cut()
        cut_at = time.monotonic()
        wait_for(watching(lambda: time.monotonic() > cut_at + 5), 10, "five seconds into the outage")
        submissions.append(submit(submitted_during, slow_lab, make_solution(tmp_path / "during", "correct")))
        # Every submission waits with the friendly text, the cut run included.
        wait_for(
            watching(lambda: time.monotonic() > cut_at + OUTAGE_S and all_delayed()),
            OUTAGE_S + 60,
            "every submission delayed",
        )
        for row in Submission.objects.filter(pk__in=[s.pk for s in submissions]).select_related("user"):
            assert row.error_detail, "the raw reason is kept for the staff"
            page = Client()
            page.force_login(row.user)
            html = page.get(f"/submissions/{row.pk}/status/").content.decode()
            assert services.GRADING_DELAYED in html and escape(row.error_detail) not in html
        engine_proxy.restore()

        # The cut attempt could not clean up after itself: its objects are still there.
        assert cut_run in {c["Labels"][LABEL_RUN] for c in our_objects()[0]}
        wait_for(watching(lambda: not Submission.objects.active().exists()), 150, "every verdict")
        wait_for(watching(lambda: our_objects() == ([], [])), 30, "every sandbox object removed")
        # Each pass completed its learner's course; the certificate follows from the signing queue.
        wait_for(
            lambda: all(Submission.objects.get(pk=s.pk).result.get("certificate") for s in submissions),
            60,
            "every certificate",
        )
    finally:
        worker.stop()

    delayed = ("queued", services.GRADING_DELAYED)
    for submission in submissions:
        submission.refresh_from_db()
        assert (submission.status, submission.score, submission.result["status"]) == ("passed", 100.0, "passed")
        # Every claim but one was a platform failure: no learner was charged an attempt.
        assert submission.platform_errors >= 1
        assert submission.attempts - submission.platform_errors == 1
        assert submission.stage_runs.count() == 2 and submission.check_results.count() == 5
        assert submission.result["certificate"] is not None
        # What the learner saw: queued or running, "Grading is delayed" while the engine
        # was away, then the verdict; never an error, never the engine's own words.
        assert delayed in seen[str(submission.pk)]
        assert {status for status, _ in seen[str(submission.pk)]} <= {"queued", "running", "passed"}
        assert {detail for _, detail in seen[str(submission.pk)]} <= {"", services.GRADING_DELAYED}
    assert messages <= {"", services.GRADING_DELAYED}
    for user in (mid_run, queued_before, submitted_during):
        assert Submission.objects.filter(user=user).count() == 1


def test_engine_connections_cut_mid_stage_are_a_platform_retry_not_the_learners_timeout(
    slow_lab, private_broker, worker_env, engine_proxy, tmp_path
):
    # An engine restart with live-restore, or a proxy in between dropping connections:
    # the stage's wait and attach streams break while the engine still answers.
    write(tmp_path / "slow" / "main.py", SLOW_SOLUTION)
    (user,) = learners(1)
    reaper = Reaper()
    statuses: set[str] = set()

    def watching(predicate):
        def check():
            statuses.add(Submission.objects.get(pk=submission.pk).status)
            reaper.tick()
            return predicate()

        return check

    worker = engine_worker(worker_env, engine_proxy)
    try:
        submission = submit(user, slow_lab, tmp_path / "slow")
        wait_for(watching(lambda: stage_running(submission, "run")), 120, "the learner's code running in stage run")
        engine_proxy.drop_connections()
        wait_for(watching(lambda: Submission.objects.get(pk=submission.pk).finished), 120, "the verdict")
        wait_for(watching(lambda: our_objects() == ([], [])), 30, "every sandbox object removed")
    finally:
        worker.stop()
    submission.refresh_from_db()
    assert (submission.status, submission.score) == ("passed", 100.0)
    assert (submission.attempts, submission.platform_errors) == (2, 1)  # one retry, not charged
    run = submission.stage_runs.get(name="run")
    assert (run.exit_code, run.timed_out) == (0, False)
    assert statuses <= {"queued", "running", "passed"}
