"""Submit-to-verdict latency and throughput through real Celery workers.

    python bench/grading_latency.py [--workers 2] [--submissions 20] [--burst 12] [--rounds 2]
                                    [--database shipwright_bench] [--redis-db 14] [--var-dir var/bench]

An isolated setup: PostgreSQL database `shipwright_bench` (created if missing),
Redis db 14 (queues `grading` and `low` purged first), SHIPWRIGHT_VAR_DIR=var/bench,
DJANGO_DEBUG=1, no resubmit cool-off, a signing key, and the tiny lab of
tests/grading/tiny_lab.py imported with `manage.py import_content`. Starts N workers
(`celery -A config worker -Q grading,low --pool solo --concurrency 1 -n benchK@%h`),
then, from this process (Django configured with the same environment):

1. latency: the trivial correct solution submitted M times one after another through
   grading.services.submission_create; wall time from before intake until the row is
   finished (the database polled every 50 ms); median and p95; target median <= 2 s
   on an idle machine;
2. throughput: K submissions created at once, graded by 1 worker (the others stop
   consuming: Celery's cancel_consumer) and then by all N; submissions/s (median over
   rounds) and the ratio N / 1; target >= 1.7x for N = 2;
3. the queue estimate against reality: K submissions created at once with all N
   workers consuming; right after each is created, the estimate its page shows
   (grading.queue_estimate.queue_estimate, the same call as the page); once all are
   graded, the real wait (the row's created_at to finished_at); the ratio real /
   estimate, median and range over the K, and the same for the M sequential
   submissions of (1) (an idle queue). 1.00x is a perfect estimate.

Every submission is by a distinct learner (the one-active-submission rule stays on),
and must pass; anything else is printed and the exit status is 1. Every worker is
stopped on exit, also on Ctrl-C. Needs PostgreSQL, Redis, the engine and the image
(`make services images`).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from _setup import (  # noqa: E402
    REPO,
    bench_env,
    django_setup,
    ensure_database,
    exit_on_sigterm,
    manage,
    percentile,
    print_table,
    start,
    stop,
    wait_until,
)

DATABASE = "shipwright_bench"
REDIS_DB = 14
VAR_DIR = "var/bench"
REGISTRY_WAIT_S = 60
QUEUES = ("grading", "low")
POLL_S = 0.05


def prepare(env: dict[str, str], content_root: Path, database: str) -> None:
    import redis

    from tests.grading.tiny_lab import make_tiny_course

    ensure_database(database)
    client = redis.Redis.from_url(env["REDIS_URL"])
    # Our own db: drop queued and unacked messages a previous, killed run may have left.
    client.delete(*QUEUES, "unacked", "unacked_index", "unacked_mutex")
    manage(env, "migrate", "--noinput")
    manage(env, "generate_signing_key", "--if-missing")
    make_tiny_course(content_root)
    manage(env, "import_content", str(content_root))


class Workers:
    """N solo-pool workers named bench1..benchN, started and always stopped here."""

    def __init__(self, env: dict[str, str], count: int, log_dir: Path):
        self.env, self.count, self.log_dir = env, count, log_dir
        self.processes = []
        self.names: list[str] = []

    def start(self, timeout: float) -> None:
        for k in range(1, self.count + 1):
            argv = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", ",".join(QUEUES)]
            argv += ["--pool", "solo", "--concurrency", "1", "-n", f"bench{k}@%h"]
            argv += ["--without-gossip", "--without-mingle", "--loglevel", "INFO"]
            self.processes.append(start(argv, self.env, self.log_dir / f"worker-{k}.log"))
        wanted = {f"bench{k}" for k in range(1, self.count + 1)}

        def all_ready():
            self._check_alive()
            replies = self.app.control.ping(timeout=1.0)
            names = sorted(name for reply in replies for name in reply if name.split("@")[0] in wanted)
            return names if len(names) == self.count else None

        self.names = wait_until(all_ready, timeout=timeout, what=f"{self.count} worker(s) to answer ping")

    @property
    def app(self):
        from config.celery import app

        return app

    def _check_alive(self) -> None:
        for k, proc in enumerate(self.processes, 1):
            if proc.poll() is not None:
                raise SystemExit(f"worker bench{k} exited with {proc.returncode}; see {self.log_dir}/worker-{k}.log")

    def use(self, count: int) -> None:
        """Let only the first `count` workers consume the grading queues."""
        for index, name in enumerate(self.names):
            for queue in QUEUES:
                if index < count:
                    self.app.control.add_consumer(queue, destination=[name], reply=True, timeout=5)
                else:
                    self.app.control.cancel_consumer(queue, destination=[name], reply=True, timeout=5)

        def settled():
            active = self.app.control.inspect(destination=self.names, timeout=2).active_queues() or {}
            consuming = [n for n in self.names if {q["name"] for q in active.get(n, [])} >= set(QUEUES)]
            idle = [n for n in self.names if not active.get(n) and n in active]
            return len(consuming) == count and len(idle) == len(self.names) - count

        wait_until(settled, timeout=30, what=f"{count} worker(s) consuming")

    def stop(self) -> None:
        for proc in self.processes:
            stop(proc)


def submit(lab, user, folder: Path, estimates: dict | None = None):
    """Create a submission; with `estimates`, record the wait its page would show now."""
    from grading import services
    from grading.intake import snapshot_from_directory
    from grading.queue_estimate import queue_estimate

    snapshot = snapshot_from_directory(folder, dest_dir=services.snapshot_dir(), limits=services.intake_limits())
    submission = services.submission_create(user=user, lab=lab, snapshot=snapshot)
    if estimates is not None:
        estimate = queue_estimate(submission)
        estimates[submission.pk] = estimate.wait_s if estimate else None
    return submission


def finished_ids(ids: list) -> set:
    from django.db import reset_queries

    from grading.models import Submission

    reset_queries()  # DEBUG=1 logs every query; the poll must not grow memory
    return set(Submission.objects.filter(pk__in=ids, status__in=Submission.FINISHED).values_list("pk", flat=True))


def wait_finished(ids: list, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(finished_ids(ids)) == len(ids):
            return
        time.sleep(POLL_S)
    raise SystemExit(f"timed out after {timeout:.0f} s waiting for {len(ids)} verdict(s)")


class Learners:
    def __init__(self):
        self.tag = uuid.uuid4().hex[:8]
        self.n = 0

    def new(self):
        from accounts.models import User

        self.n += 1
        # No password: hashing one costs more CPU than grading a tiny lab.
        return User.objects.create_user(email=f"bench-{self.tag}-{self.n}@example.invalid", password=None)


def failures(ids: list) -> list[str]:
    from grading.models import Submission

    bad = Submission.objects.filter(pk__in=ids).exclude(status=Submission.Status.PASSED)
    return [f"{s.pk}: {s.status} {s.score}/{s.max_score} {s.error_message[:200]}" for s in bad]


def breakdown(ids: list) -> dict[str, float]:
    """Medians, from the rows, of where the time of the given submissions went."""
    from grading.models import Submission

    rows = list(Submission.objects.filter(pk__in=ids))
    return {
        "queued": statistics.median((s.started_at - s.created_at).total_seconds() for s in rows),
        "grading": statistics.median((s.finished_at - s.started_at).total_seconds() for s in rows),
        "sandbox_start": statistics.median((s.result or {}).get("timings", {}).get("sandbox_start_s", 0) for s in rows),
    }


def latency(
    lab, learners: Learners, solution: Path, count: int, timeout: float, estimates: dict
) -> tuple[list[float], list]:
    times, ids = [], []
    for _ in range(count):
        user = learners.new()  # outside the clock
        t = time.perf_counter()
        submission = submit(lab, user, solution, estimates)
        wait_finished([submission.pk], timeout)
        times.append(time.perf_counter() - t)
        ids.append(submission.pk)
    return times, ids


def throughput(
    lab, learners: Learners, solution: Path, count: int, timeout: float, estimates: dict | None = None
) -> tuple[float, list]:
    users = [learners.new() for _ in range(count)]  # outside the clock
    t = time.perf_counter()
    ids = [submit(lab, user, solution, estimates).pk for user in users]
    wait_finished(ids, timeout)
    return count / (time.perf_counter() - t), ids


def estimate_ratios(estimates: dict) -> list[float]:
    """Real wait (created to finished, from the rows) over the estimate shown at submit
    time, in submission order; a submission shown no estimate is left out."""
    from grading.models import Submission

    rows = {s.pk: s for s in Submission.objects.filter(pk__in=list(estimates))}
    ordered = sorted(estimates, key=lambda pk: rows[pk].created_at)
    return [
        (rows[pk].finished_at - rows[pk].created_at).total_seconds() / estimates[pk] for pk in ordered if estimates[pk]
    ]


def wait_for_registry(count: int) -> None:
    """Until the worker registry (whose beats the estimate reads) shows `count` slots
    on the grading queue: after add_consumer it can lag one beat."""
    from django.conf import settings

    from grading.models import GradingWorker

    queue = settings.SHIPWRIGHT_GRADING_QUEUE
    wait_until(
        lambda: GradingWorker.objects.grading_slots(queue=queue) == count,
        timeout=REGISTRY_WAIT_S,
        what=f"the worker registry to show {count} grader(s)",
        interval=0.5,
    )


def ratio_cells(ratios: list[float]) -> tuple[str, str]:
    if not ratios:
        return "n/a", ""
    return f"{statistics.median(ratios):.2f}x", f"range {min(ratios):.2f}x to {max(ratios):.2f}x"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2, help="N workers started (default 2)")
    parser.add_argument("--submissions", type=int, default=20, help="M sequential submissions timed (default 20)")
    parser.add_argument("--burst", type=int, default=12, help="K submissions per throughput run (default 12)")
    parser.add_argument("--rounds", type=int, default=2, help="throughput runs per worker count (default 2)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds allowed per verdict (default 300)")
    parser.add_argument("--database", default=DATABASE, help=f"PostgreSQL database (default {DATABASE})")
    parser.add_argument("--redis-db", type=int, default=REDIS_DB, help=f"Redis database (default {REDIS_DB})")
    parser.add_argument("--var-dir", default=VAR_DIR, help=f"var dir under the repository (default {VAR_DIR})")
    args = parser.parse_args()
    if args.workers < 1 or args.submissions < 1 or args.burst < 1 or args.rounds < 1:
        parser.error("counts must be >= 1")

    exit_on_sigterm()
    env = bench_env(
        database=args.database,
        var_dir=args.var_dir,
        redis_db=args.redis_db,
        DJANGO_DEBUG="1",
        SHIPWRIGHT_RESUBMIT_COOLOFF_S="0",
    )
    log_dir = REPO / args.var_dir / "logs"
    with tempfile.TemporaryDirectory(prefix="shipwright-bench-") as tmp:
        tmp_path = Path(tmp)
        prepare(env, tmp_path / "content", args.database)
        django_setup(env)
        from labs.models import Lab
        from tests.grading.tiny_lab import make_solution

        lab = Lab.objects.get(slug="tiny")
        solution = make_solution(tmp_path, "correct")
        learners = Learners()
        workers = Workers(env, args.workers, log_dir)
        all_ids: list = []
        try:
            t = time.perf_counter()
            workers.start(timeout=120)
            startup_s = time.perf_counter() - t
            # Warm-up, not counted: each worker imports, builds the lab's asset cache, inspects the image.
            _, ids = throughput(lab, learners, solution, args.workers, args.timeout)
            all_ids += ids

            idle_estimates: dict = {}
            times, ids = latency(lab, learners, solution, args.submissions, args.timeout, idle_estimates)
            parts = breakdown(ids)
            all_ids += ids

            one, many = [], []
            for _ in range(args.rounds):
                workers.use(1)
                rate, ids = throughput(lab, learners, solution, args.burst, args.timeout * args.burst)
                one.append(rate)
                all_ids += ids
                workers.use(args.workers)
                rate, ids = throughput(lab, learners, solution, args.burst, args.timeout * args.burst)
                many.append(rate)
                all_ids += ids

            wait_for_registry(args.workers)
            burst_estimates: dict = {}
            _, ids = throughput(lab, learners, solution, args.burst, args.timeout * args.burst, burst_estimates)
            all_ids += ids
            idle_ratios, burst_ratios = estimate_ratios(idle_estimates), estimate_ratios(burst_estimates)
        finally:
            workers.stop()

        bad = failures(all_ids)

    one_med, many_med = statistics.median(one), statistics.median(many)
    n = args.workers
    rows = [
        (f"workers started and answering ping (s, {n})", f"{startup_s:.2f}", ""),
        (f"submit to verdict, median of {len(times)} (s)", f"{statistics.median(times):.2f}", "target <= 2 s (idle)"),
        (f"submit to verdict, p95 of {len(times)} (s)", f"{percentile(times, 95):.2f}", ""),
        ("submit to verdict, min / max (s)", f"{min(times):.2f}/{max(times):.2f}", ""),
        ("  of which queued: created to claimed (median s)", f"{parts['queued']:.2f}", ""),
        ("  of which grading: claimed to finished (median s)", f"{parts['grading']:.2f}", ""),
        ("    of which starting sandboxes (median s)", f"{parts['sandbox_start']:.2f}", ""),
        (f"throughput, 1 worker ({args.burst} at once, subs/s)", f"{one_med:.2f}", ""),
        (f"throughput, {n} workers ({args.burst} at once, subs/s)", f"{many_med:.2f}", ""),
        (f"concurrency ratio {n} / 1", f"{many_med / one_med:.2f}x", "target >= 1.7x (N = 2)"),
        (f"queue estimate, real wait / shown, idle ({len(idle_ratios)} in turn)", *ratio_cells(idle_ratios)),
        (f"queue estimate, real wait / shown, {args.burst} at once, {n} workers", *ratio_cells(burst_ratios)),
    ]
    print_table(rows)
    print(
        f"({len(all_ids)} submissions graded; throughput is the median of {args.rounds} round(s); "
        f"worker logs in {log_dir})"
    )
    if bad:
        print(f"{len(bad)} submission(s) did not pass:")
        for line in bad:
            print("  " + line)
        return 1
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        print("interrupted: every process this bench started was stopped", file=sys.stderr)
        raise SystemExit(130) from None
