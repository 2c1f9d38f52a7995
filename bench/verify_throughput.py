"""Throughput of the public verify page against a minimal Django view, same server.

    python bench/verify_throughput.py [--clients 4] [--duration 5] [--rounds 3] [--debug]
                                      [--database NAME] [--redis-db N] [--var-dir DIR]

An isolated setup: PostgreSQL database `shipwright_bench_verify` (created if missing),
Redis db 14 as the cache (the rate limiter's counters, as in production),
SHIPWRIGHT_VAR_DIR=var/bench-verify, the real sample course imported from content/,
one learner with a PASSED submission row for every lab of the course and a real
signed certificate from certificates.services.certificate_award_if_complete.

The site is served by gunicorn on 127.0.0.1:<free port>, 2 sync workers, with the
production settings (DJANGO_DEBUG=0, a random secret key, allowed host 127.0.0.1,
no SSL redirect, collected static files; `--debug` serves DJANGO_DEBUG=1 instead)
and SHIPWRIGHT_VERIFY_RATE_LIMIT=1000000000 so the rate limiter counts but never caps.

Load: C client threads in this process, each with its own http.client connection
(gunicorn's sync workers close it after every response; http.client reopens it), for
D seconds per target, alternating over R rounds: /livez (a minimal view: the
baseline) and /verify/<id>/. Prints requests/s for each (median over rounds), the
ratio verify / baseline (target >= 0.7x), and p50 / p95 latency over all rounds. Every
verify response must be 200 and say "Valid certificate"; every baseline one 200 "ok";
errors are counted and printed, and make the exit status 1.
"""

from __future__ import annotations

import argparse
import http.client
import secrets
import statistics
import sys
import threading
import time
from collections import Counter

from _setup import (
    REPO,
    bench_env,
    django_setup,
    ensure_database,
    exit_on_sigterm,
    free_port,
    manage,
    percentile,
    print_table,
    start,
    stop,
    wait_until,
)

DATABASE = "shipwright_bench_verify"
REDIS_DB = 14
VAR_DIR = "var/bench-verify"
HOST = "127.0.0.1"
LEARNER_EMAIL = "bench-verify@example.invalid"
VALID = b"Valid certificate"


def prepare(env: dict[str, str], database: str) -> None:
    ensure_database(database)
    manage(env, "migrate", "--noinput")
    if env["DJANGO_DEBUG"] == "0":
        manage(env, "collectstatic", "--noinput")
    manage(env, "generate_signing_key", "--if-missing")
    manage(env, "import_content", str(REPO / "content"))


def issued_certificate(database: str):
    """The bench learner's certificate for the sample course; issued on the first run,
    from one PASSED submission row per lab (as tests/certificates pass_lab)."""
    from django.utils import timezone

    from accounts.models import User
    from certificates import services
    from certificates.models import Certificate
    from courses.models import Course
    from grading.models import Submission

    course = Course.objects.get(slug="mlops-foundations")
    user = User.objects.filter(email=LEARNER_EMAIL).first()
    if user is None:
        user = User.objects.create_user(email=LEARNER_EMAIL, password=None, display_name="Bench Learner")
    certificate = services.certificate_for(user=user, course=course)
    if certificate is None:
        for lab in course.labs.all():
            Submission.objects.create(
                user=user,
                lab=lab,
                source_kind="directory",
                snapshot_path="x.tar.gz",
                snapshot_sha256="a" * 64,
                status=Submission.Status.PASSED,
                score=100.0,
                max_score=100.0,
                lab_hash=lab.content_hash,
                image="shipwright-lab:py311",
                image_digest="sha256:" + "b" * 64,
                started_at=timezone.now(),
                finished_at=timezone.now(),
            )
        certificate = services.certificate_award_if_complete(user=user, course=course)
        if certificate is None:
            raise SystemExit("certificate_award_if_complete issued nothing: the course's requirements changed?")
    if certificate.status != Certificate.Status.VALID or not certificate.public:
        raise SystemExit(f"the bench certificate {certificate.public_id} is {certificate.status}; drop {database}")
    return certificate


def fetch(conn: http.client.HTTPConnection, path: str) -> tuple[int, bytes]:
    conn.request("GET", path)
    response = conn.getresponse()
    return response.status, response.read()


class Load:
    """C threads hammering one path for a fixed time; every response checked."""

    def __init__(self, port: int, path: str, expect: bytes, clients: int, duration: float):
        self.port, self.path, self.expect, self.clients, self.duration = port, path, expect, clients, duration
        self.latencies: list[float] = []
        self.errors: Counter[str] = Counter()
        self.lock = threading.Lock()

    def _client(self, deadline: float) -> None:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=30)
        latencies, errors = [], Counter()
        try:
            while time.perf_counter() < deadline:
                t = time.perf_counter()
                try:
                    status, body = fetch(conn, self.path)
                except (OSError, http.client.HTTPException) as exc:
                    errors[f"{type(exc).__name__}: {exc}"] += 1
                    conn.close()
                    continue
                latencies.append(time.perf_counter() - t)
                if status != 200:
                    errors[f"HTTP {status}"] += 1
                elif self.expect not in body:
                    errors[f"200 without {self.expect.decode()!r}"] += 1
        finally:
            conn.close()
        with self.lock:
            self.latencies += latencies
            self.errors.update(errors)

    def run(self) -> float:
        """Responses per second over the window (any status; failed connections are not counted)."""
        start_at = time.perf_counter()
        deadline = start_at + self.duration
        threads = [threading.Thread(target=self._client, args=(deadline,)) for _ in range(self.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return len(self.latencies) / (time.perf_counter() - start_at)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=4, help="C concurrent client threads (default 4)")
    parser.add_argument("--duration", type=float, default=5, help="D seconds per target per round (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="R rounds, targets alternating (default 3)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers (default 2)")
    parser.add_argument("--debug", action="store_true", help="serve with DJANGO_DEBUG=1, not production settings")
    parser.add_argument("--database", default=DATABASE, help=f"PostgreSQL database (default {DATABASE})")
    parser.add_argument("--redis-db", type=int, default=REDIS_DB, help=f"Redis database (default {REDIS_DB})")
    parser.add_argument("--var-dir", default=VAR_DIR, help=f"var dir under the repository (default {VAR_DIR})")
    args = parser.parse_args()
    if args.clients < 1 or args.rounds < 1 or args.workers < 1 or args.duration <= 0:
        parser.error("counts and the duration must be positive")

    exit_on_sigterm()
    extra = {
        # The cache (the limiter's counters) in the bench's Redis database too, never a
        # caller's SHIPWRIGHT_CACHE_URL.
        "SHIPWRIGHT_CACHE_URL": f"redis://127.0.0.1:6379/{args.redis_db}",
        "SHIPWRIGHT_VERIFY_RATE_LIMIT": "1000000000",
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
    }
    if args.debug:
        extra |= {"DJANGO_DEBUG": "1"}
    else:
        extra |= {
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": HOST,
            "DJANGO_SECURE_SSL_REDIRECT": "0",
        }
    env = bench_env(database=args.database, var_dir=args.var_dir, redis_db=args.redis_db, **extra)
    prepare(env, args.database)
    django_setup(env)
    certificate = issued_certificate(args.database)
    targets = [("/livez", "/livez", b"ok"), ("verify", f"/verify/{certificate.public_id}/", VALID)]

    port = free_port()
    log = REPO / args.var_dir / "logs" / "gunicorn.log"
    argv = [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"{HOST}:{port}"]
    argv += ["--workers", str(args.workers), "--worker-class", "sync", "--log-level", "warning"]
    server = start(argv, env, log)
    rates: dict[str, list[float]] = {name: [] for name, _, _ in targets}
    latencies: dict[str, list[float]] = {name: [] for name, _, _ in targets}
    errors: dict[str, Counter[str]] = {name: Counter() for name, _, _ in targets}
    try:

        def up() -> bool:
            if server.poll() is not None:
                raise SystemExit(f"gunicorn exited with {server.returncode}; see {log}")
            conn = http.client.HTTPConnection(HOST, port, timeout=5)
            try:
                return all(fetch(conn, path)[0] == 200 for _, path, _ in targets)
            except (OSError, http.client.HTTPException):
                return False
            finally:
                conn.close()

        wait_until(up, timeout=60, what=f"gunicorn on {HOST}:{port}", interval=0.2)
        # Warm-up, not counted: both workers import, connect and fill their caches.
        for _, path, expect in targets:
            Load(port, path, expect, args.clients, 1.0).run()
        for _ in range(args.rounds):
            for name, path, expect in targets:
                load = Load(port, path, expect, args.clients, args.duration)
                rates[name].append(load.run())
                latencies[name] += load.latencies
                errors[name].update(load.errors)
    finally:
        stop(server)

    base, verify = statistics.median(rates["/livez"]), statistics.median(rates["verify"])
    rows = []
    for name, _, _ in targets:
        lat = latencies[name] or [float("nan")]
        rows += [
            (f"{name}: requests/s (median of {args.rounds})", f"{statistics.median(rates[name]):.1f}", ""),
            (
                f"{name}: latency p50 / p95 (ms)",
                f"{percentile(lat, 50) * 1000:.1f}/{percentile(lat, 95) * 1000:.1f}",
                "",
            ),
            (f"{name}: errors / requests", f"{sum(errors[name].values())}/{len(latencies[name])}", "target 0"),
        ]
    rows.append(("ratio verify / baseline", f"{verify / base:.2f}x", "target >= 0.7x"))
    print_table(rows)
    mode = "DJANGO_DEBUG=1" if args.debug else "production settings"
    print(
        f"(gunicorn, {args.workers} sync workers, {mode}; {args.clients} client threads x {args.duration:g} s "
        f"x {args.rounds} round(s) per target; certificate {certificate.public_id}; log {log})"
    )
    failed = False
    for name, counter in errors.items():
        for what, count in counter.most_common():
            print(f"  {name}: {count} x {what}")
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        print("interrupted: every process this bench started was stopped", file=sys.stderr)
        raise SystemExit(130) from None
