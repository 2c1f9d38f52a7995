"""Shared helpers for the benches: an isolated environment, its database, the
processes the bench starts (and always stops), and the table printer.

Everything talks to 127.0.0.1 only. Nothing here touches the development
database, var/ or Redis databases other than the one a bench names.
"""

from __future__ import annotations

import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def bench_env(*, database: str, var_dir: str, redis_db: int | None, **extra: str) -> dict[str, str]:
    """The environment of the bench process and every child it starts."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{database}",
        "SHIPWRIGHT_VAR_DIR": str(REPO / var_dir),
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING"),
        **extra,
    }
    # Never inherit a caller's signing-key, snapshot or cache location: all under var_dir.
    for name in ("SHIPWRIGHT_SIGNING_KEY_DIR", "SHIPWRIGHT_SNAPSHOT_DIR", "SHIPWRIGHT_ASSET_CACHE_DIR"):
        env.pop(name, None)
    if redis_db is None:
        env.pop("REDIS_URL", None)
    else:
        env["REDIS_URL"] = f"redis://127.0.0.1:6379/{redis_db}"
    (REPO / var_dir).mkdir(parents=True, exist_ok=True)
    return env


def ensure_database(name: str) -> None:
    """CREATE DATABASE `name` on the local server unless it exists."""
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def manage(env: dict[str, str], *args: str) -> None:
    """Run `manage.py ARGS` with the bench environment; fail loudly, stay quiet on success."""
    proc = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"manage.py {' '.join(args)} failed (exit {proc.returncode})")


def django_setup(env: dict[str, str]) -> None:
    """Configure Django in this process with the bench environment."""
    os.environ.update(env)
    import django

    django.setup()


def start(argv: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen:
    """Start a child in its own session (so Ctrl-C reaches only the bench, which then
    stops it in order), its output appended to log_path."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            argv,
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(proc: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM the child we started (by its pid), then SIGKILL if it lingers."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so `finally` blocks stop the children (Ctrl-C,
    SIGINT, already raises KeyboardInterrupt)."""

    def handler(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, *, timeout: float, what: str, interval: float = 0.1):
    """Poll `predicate` until it returns something truthy; bounded by `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def print_table(rows: list[tuple[str, str, str]]) -> None:
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'value':>8}  target")
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:>8}  {target}")
