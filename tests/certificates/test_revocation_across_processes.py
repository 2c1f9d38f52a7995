"""A revocation, suspension or key rotation made in one process is served by every
other process on its next request, on the embedded default (no Redis: each process
has its own local-memory cache)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request

import pytest
from django.db import connection

from certificates import services
from certificates import status_list as bitstring
from tests.certificates.test_issuing_and_verify_page import pass_lab
from tests.grading.tiny_lab import make_tiny_course

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Two workers: two processes with two local caches, both must follow the database.
REQUESTS_PER_CHECK = 8

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def tiny_course(tmp_path):
    from courses.importer import content_import
    from courses.models import Course

    content_import(make_tiny_course(tmp_path / "content"))
    return Course.objects.get(slug="tiny-course")


@pytest.fixture
def embedded_env(settings, tmp_path):
    """The environment of `make run`: no Redis, so the cache is per process."""
    shutil.copytree(settings.SHIPWRIGHT_SIGNING_KEY_DIR, tmp_path / "keys")
    settings.SHIPWRIGHT_SIGNING_KEY_DIR = tmp_path / "keys"
    db = connection.settings_dict
    env = {key: value for key, value in os.environ.items() if key not in ("REDIS_URL", "SHIPWRIGHT_CACHE_URL")}
    return env | {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_DEBUG": "1",
        "DATABASE_URL": f"postgresql://{db['USER'] or 'postgres'}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "SHIPWRIGHT_SIGNING_KEY_DIR": str(tmp_path / "keys"),
        "SHIPWRIGHT_VAR_DIR": str(tmp_path / "var"),
    }


@pytest.fixture
def site(embedded_env, tmp_path):
    """The site served by gunicorn with two worker processes on a free loopback port."""
    log = tmp_path / "gunicorn.log"
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", "127.0.0.1:0", "--workers", "2"],
        cwd=REPO,
        env=embedded_env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )
    try:
        deadline = time.monotonic() + 60
        url = None
        while url is None:
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()
            found = re.search(r"Listening at: (http://127\.0\.0\.1:\d+)", log.read_text())
            if found:
                url = found.group(1)
            time.sleep(0.1)
        while log.read_text().count("Booting worker") < 2:
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.status, response.read()


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )


def bits_served(site: str, index: int) -> set[bool]:
    seen = set()
    for _ in range(REQUESTS_PER_CHECK):
        status, body = get(f"{site}/status/revocation")
        assert status == 200
        seen.add(bitstring.is_set(bitstring.decode(json.loads(body)["credentialSubject"]["encodedList"]), index))
    return seen


def test_a_revocation_from_the_command_line_is_served_by_every_process_at_once(
    site, embedded_env, tiny_course, learner
):
    pass_lab(learner, tiny_course)
    certificate = services.certificate_award_if_complete(user=learner, course=tiny_course)
    assert bits_served(site, certificate.status_index) == {False}  # both processes have it cached now

    revoked = manage(embedded_env, "revoke_certificate", certificate.public_id, "--reason", "Plagiarised capstone")
    assert revoked.returncode == 0, revoked.stderr

    assert bits_served(site, certificate.status_index) == {True}


def test_a_key_rotation_and_a_suspension_are_served_by_every_process_at_once(site, embedded_env, tiny_course, learner):
    pass_lab(learner, tiny_course)
    certificate = services.certificate_award_if_complete(user=learner, course=tiny_course)
    for _ in range(REQUESTS_PER_CHECK):
        assert len(json.loads(get(f"{site}/.well-known/did.json")[1])["assertionMethod"]) == 1
        assert b"Suspended" not in get(f"{site}/verify/{certificate.public_id}/")[1]

    rotated = manage(embedded_env, "generate_signing_key")
    assert rotated.returncode == 0, rotated.stderr
    services.certificate_suspend(certificate=certificate, reason="Under review")

    for _ in range(REQUESTS_PER_CHECK):
        did = json.loads(get(f"{site}/.well-known/did.json")[1])
        assert [method.rsplit("#", 1)[1] for method in did["assertionMethod"]] == ["key-1", "key-2"]
        assert b"Suspended" in get(f"{site}/verify/{certificate.public_id}/")[1]
