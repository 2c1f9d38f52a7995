"""The Celery app round-trips a task through a real worker process and real Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import redis
from django.conf import settings


def test_a_trivial_task_round_trips_through_a_real_worker_and_redis(tmp_path):
    queue = f"ping-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"}
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-Q",
            queue,
            "--pool",
            "solo",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "WARNING",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        from config.celery import app

        key = f"shipwright-test:{uuid.uuid4().hex}"
        # The result travels back through Redis itself: the worker runs the task,
        # and a chord-free way to observe it is a task that echoes into a Redis key.
        client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
        app.send_task("shipwright.echo_to_redis", args=[key, "pong"], queue=queue)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            value = client.get(key)
            if value is not None:
                break
            assert worker.poll() is None, worker.stderr.read().decode()
            time.sleep(0.2)
        assert value == b"pong"
        client.delete(key)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
