"""Real Celery worker processes for tests, on queues of their own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import redis
from django.db import connection

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def worker_env(settings):
    # Queues of our own: another test run sharing this Redis never takes our messages.
    suffix = uuid.uuid4().hex[:8]
    broker_url = settings.CELERY_BROKER_URL  # a drill may point the settings at a private broker
    settings.SHIPWRIGHT_GRADING_QUEUE = f"grading-{suffix}"
    settings.SHIPWRIGHT_LOW_QUEUE = f"low-{suffix}"
    settings.SHIPWRIGHT_MAINTENANCE_QUEUE = f"maintenance-{suffix}"
    settings.SHIPWRIGHT_INTAKE_QUEUE = f"intake-{suffix}"
    settings.SHIPWRIGHT_CERTIFICATES_QUEUE = f"certificates-{suffix}"
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": f"postgresql://{db['USER'] or 'postgres'}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "SHIPWRIGHT_SIGNING_KEY_DIR": str(settings.SHIPWRIGHT_SIGNING_KEY_DIR),
        "SHIPWRIGHT_SNAPSHOT_DIR": str(settings.SHIPWRIGHT_SNAPSHOT_DIR),
        "SHIPWRIGHT_GRADING_QUEUE": settings.SHIPWRIGHT_GRADING_QUEUE,
        "SHIPWRIGHT_LOW_QUEUE": settings.SHIPWRIGHT_LOW_QUEUE,
        "SHIPWRIGHT_MAINTENANCE_QUEUE": settings.SHIPWRIGHT_MAINTENANCE_QUEUE,
        "SHIPWRIGHT_INTAKE_QUEUE": settings.SHIPWRIGHT_INTAKE_QUEUE,
        "SHIPWRIGHT_CERTIFICATES_QUEUE": settings.SHIPWRIGHT_CERTIFICATES_QUEUE,
        "SHIPWRIGHT_STORAGE_URL": settings.SHIPWRIGHT_STORAGE_URL,
        "REDIS_URL": broker_url,
        # A worker e-mails (a certificate, a staff alert): kept in its memory, never sent.
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
    }
    yield env
    redis.Redis.from_url(broker_url).delete(
        settings.SHIPWRIGHT_GRADING_QUEUE,
        settings.SHIPWRIGHT_LOW_QUEUE,
        settings.SHIPWRIGHT_MAINTENANCE_QUEUE,
        settings.SHIPWRIGHT_INTAKE_QUEUE,
        settings.SHIPWRIGHT_CERTIFICATES_QUEUE,
    )


class Worker:
    """A solo-pool worker on the queues of `env` (intake, grading, low and, as under
    `make run`, certificates); `broker_url` points it at another broker (a private
    redis-server a drill restarts)."""

    def __init__(
        self,
        env: dict[str, str],
        *,
        broker_url: str | None = None,
        queues: list[str] | None = None,
        log: Path | None = None,
        **extra_env: str,
    ):
        if queues is None:
            queues = [
                env["SHIPWRIGHT_INTAKE_QUEUE"],
                env["SHIPWRIGHT_GRADING_QUEUE"],
                env["SHIPWRIGHT_LOW_QUEUE"],
                env["SHIPWRIGHT_CERTIFICATES_QUEUE"],
            ]
        if broker_url:
            extra_env["REDIS_URL"] = broker_url
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-Q",
                ",".join(queues),
                "--pool",
                "solo",
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                "INFO",
            ],
            cwd=REPO,
            env={**env, **extra_env},
            stdout=subprocess.DEVNULL,
            stderr=open(log or os.environ.get("WORKER_LOG", os.devnull), "a"),
        )

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
