"""Personas and shared fixtures for the whole suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from allauth.account.models import EmailAddress
from hypothesis import settings as hypothesis_settings

from tests.factories import UserFactory
from tests.grading.workers import worker_env  # noqa: F401  (a shared fixture)

REPO = Path(__file__).resolve().parent.parent

# CI runs the property tests over a fixed sequence of examples, so a red run points
# at a change rather than at the day's draw; locally each run explores new ones.
hypothesis_settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")
CONTENT = REPO / "content"
PASSWORD = "correct horse battery staple"


def _verified(user):
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    return user


@pytest.fixture
def learner(db):
    return _verified(UserFactory(email="learner@example.com", display_name="Ada Learner"))


@pytest.fixture
def other_learner(db):
    return _verified(UserFactory(email="other@example.com", display_name="Other Learner"))


@pytest.fixture
def instructor(db):
    return _verified(UserFactory(email="instructor@example.com", display_name="Ivy Instructor", is_staff=True))


@pytest.fixture
def employer(client):
    """An employer has no account: an anonymous client."""
    return client


@pytest.fixture
def learner_client(client, learner):
    client.force_login(learner)
    return client


@pytest.fixture
def instructor_client(client, instructor):
    client.force_login(instructor)
    return client


@pytest.fixture
def sample_course(db):
    """The real sample course, imported from content/."""
    from courses.importer import content_import
    from courses.models import Course

    content_import(CONTENT)
    return Course.objects.get(slug="mlops-foundations")


@pytest.fixture(scope="session")
def _signing_key_dir(tmp_path_factory):
    from certificates import signing

    folder = tmp_path_factory.mktemp("signing-keys")
    signing.save_private_key_file(signing.generate_private_key(), folder / "key-1.pem")
    return folder


@pytest.fixture(autouse=True)
def _isolated_settings(settings, _signing_key_dir, tmp_path_factory):
    """Every test signs with a throwaway issuer key and starts with an empty cache
    (and no requests counted against the verify rate limit)."""
    from django.core.cache import cache

    from certificates import ratelimit

    settings.SHIPWRIGHT_SIGNING_KEY_DIR = _signing_key_dir
    cache.clear()
    ratelimit.forget_counts()
    yield


# Chromium (Debian's), driven by Playwright, for the browser tests of every folder
# (tests/browser, tests/lti). One Playwright per session, defined here once: a second
# definition would start a second sync Playwright in the same thread while the first
# still runs, which Playwright refuses.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()
