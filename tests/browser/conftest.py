"""Chromium (Debian's), driven by Playwright, against the live test server."""

from __future__ import annotations

import pytest
from django.conf import settings

from tests.grading.tiny_lab import make_tiny_course
from tests.grading.workers import Worker


@pytest.fixture
def phone(browser):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


@pytest.fixture
def tiny_lab(transactional_db, tmp_path):
    """The tiny lab, committed: the live server and a worker process read it."""
    from courses.importer import content_import
    from labs.models import Lab

    content_import(make_tiny_course(tmp_path / "content"))
    return Lab.objects.get(slug="tiny")


@pytest.fixture
def worker(worker_env):
    """A real Celery worker on this test's grading and intake queues."""
    worker = Worker(worker_env)
    yield worker
    worker.stop()


def log_in(page, live_server, user) -> None:
    """Sign `user` in for the browser page: a session cookie made by Django's client."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    page.context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": live_server.url}])
