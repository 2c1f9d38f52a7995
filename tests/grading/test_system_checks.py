"""The engine and image system checks, and the worker that reports them at start:
a machine that cannot grade says so at once, with the command that fixes it."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

import redis
from django.conf import settings as django_settings

from grading import system_checks
from tests.grading.workers import REPO


def test_an_engine_socket_that_does_not_exist_is_a_warning_naming_engine_sh(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")

    [message] = system_checks.check_engine_and_images()

    assert message.id == "grading.W001"
    assert f"unix://{tmp_path}/no-engine.sock" in message.msg
    assert "`bash docker/engine.sh`" in message.hint
    assert not message.is_serious()  # a web-only host can still migrate and serve


def test_a_missing_lab_image_is_a_warning_naming_make_images(settings):
    settings.SHIPWRIGHT_LAB_IMAGE = f"shipwright-no-such-image:{uuid.uuid4().hex[:8]}"

    [message] = system_checks.check_engine_and_images()

    assert message.id == "grading.W002"
    assert settings.SHIPWRIGHT_LAB_IMAGE in message.msg
    assert "`make images`" in message.hint and "`bash docker/build-images.sh`" in message.hint


def test_an_image_named_by_a_lab_is_checked_when_the_database_may_be_read(tiny_lab):
    missing = f"shipwright-no-such-image:{uuid.uuid4().hex[:8]}"
    type(tiny_lab).objects.filter(pk=tiny_lab.pk).update(spec={**tiny_lab.spec, "image": missing})

    assert system_checks.check_engine_and_images() == []
    [message] = system_checks.check_engine_and_images(databases=["default"])
    assert message.id == "grading.W002" and missing in message.msg


def test_a_working_engine_with_its_image_raises_nothing(db):
    assert system_checks.check_engine_and_images(databases=["default"]) == []


def test_a_worker_without_engine_or_key_logs_each_problem_with_its_fix_and_keeps_working(db, worker_env, tmp_path):
    log = tmp_path / "worker.log"
    queue = worker_env["SHIPWRIGHT_GRADING_QUEUE"]
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queue, "--pool", "solo"]
        + ["--without-gossip", "--without-mingle", "--loglevel", "INFO"],
        cwd=REPO,
        env={
            **worker_env,
            "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock",
            "SHIPWRIGHT_SIGNING_KEY_DIR": str(tmp_path / "no-keys"),
        },
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )
    try:
        key = f"shipwright-test:{uuid.uuid4().hex}"
        from config.celery import app

        app.send_task("shipwright.echo_to_redis", args=[key, "still here"], queue=queue)
        client = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
        deadline = time.monotonic() + 60
        while client.get(key) is None and time.monotonic() < deadline:
            assert worker.poll() is None, log.read_text()
            time.sleep(0.2)
        assert client.get(key) == b"still here"  # the worker did not exit
        client.delete(key)
        text = log.read_text()
        errors = [line for line in text.splitlines() if "ERROR" in line and "Shipwright is not ready" in line]
        assert any("grading.W001" in line and "`bash docker/engine.sh`" in line for line in errors), text
        assert any(
            "certificates.W001" in line and "`python manage.py generate_signing_key`" in line for line in errors
        ), text
    finally:
        worker.terminate()
        worker.wait(timeout=30)
