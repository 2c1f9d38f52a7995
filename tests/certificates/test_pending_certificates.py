"""A pass without a signing key is stored, and its certificate is issued once a key
exists: never lost, never a traceback at a learner's last lab."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

from certificates import services
from certificates.models import Certificate, PendingCertificate
from grading.models import Submission
from tests.certificates.test_issuing_and_verify_page import pass_lab
from tests.grading.tiny_lab import make_solution, make_tiny_course
from tests.grading.workers import REPO


@pytest.fixture
def tiny_course(db, tmp_path):
    from courses.importer import content_import
    from courses.models import Course

    content_import(make_tiny_course(tmp_path / "content"))
    return Course.objects.get(slug="tiny-course")


@pytest.fixture
def no_key(settings, tmp_path, monkeypatch):
    for name in ("SHIPWRIGHT_SIGNING_KEY", "SHIPWRIGHT_SIGNING_KEY_FILE", "SHIPWRIGHT_SIGNING_KEY_ID"):
        monkeypatch.delenv(name, raising=False)
    key_dir = settings.SHIPWRIGHT_SIGNING_KEY_DIR
    settings.SHIPWRIGHT_SIGNING_KEY_DIR = tmp_path / "no-keys"
    return key_dir  # the usable one, for when a key "appears"


def test_a_pass_without_a_key_leaves_the_certificate_pending_and_says_so(tiny_course, learner, no_key, caplog):
    pass_lab(learner, tiny_course)

    with caplog.at_level(logging.WARNING, logger="certificates.services"):
        assert services.certificate_award_if_complete(user=learner, course=tiny_course) is None

    assert not Certificate.objects.filter(user=learner).exists()
    assert services.certificate_pending(user=learner, course=tiny_course)
    assert "`python manage.py generate_signing_key`" in caplog.text


def test_the_learner_is_told_the_certificate_will_be_issued_shortly(tiny_course, learner, learner_client, no_key):
    pass_lab(learner, tiny_course)
    services.certificate_award_if_complete(user=learner, course=tiny_course)

    page = learner_client.get("/dashboard/").content.decode()

    assert services.CERTIFICATE_PENDING_TEXT.format(course="Tiny course") in page


def test_the_reaper_hands_pending_certificates_to_the_signer_which_issues_them_once_a_key_exists(
    tiny_course, learner, no_key, settings
):
    import redis

    from certificates.tasks import issue_pending
    from grading.tasks import reap_stale_submissions

    settings.SHIPWRIGHT_CERTIFICATES_QUEUE = queue = f"certificates-{learner.pk}-{id(settings)}"
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    pass_lab(learner, tiny_course)
    services.certificate_award_if_complete(user=learner, course=tiny_course)
    try:
        # The reaper's worker holds no key: it sends the sweep to the signing worker's queue.
        reap_stale_submissions()
        [message] = broker.lrange(queue, 0, -1)
        assert b'"task": "certificates.issue_pending"' in message
    finally:
        broker.delete(queue)
    issue_pending.run()  # what the signer runs
    assert services.certificate_pending(user=learner, course=tiny_course)  # still no key: still owed

    settings.SHIPWRIGHT_SIGNING_KEY_DIR = no_key
    issue_pending.run()

    certificate = Certificate.objects.get(user=learner, course=tiny_course)
    assert services.certificate_verify(certificate).fully_verified
    assert not services.certificate_pending(user=learner, course=tiny_course)
    assert certificate.events.get().action == "issued"


def test_a_pending_certificate_whose_passes_are_gone_is_dropped_not_issued(tiny_course, learner, no_key, settings):
    submission = pass_lab(learner, tiny_course)
    services.certificate_award_if_complete(user=learner, course=tiny_course)
    Submission.objects.filter(pk=submission.pk).delete()

    settings.SHIPWRIGHT_SIGNING_KEY_DIR = no_key
    assert services.certificates_issue_pending() == []
    assert not PendingCertificate.objects.exists() and not Certificate.objects.exists()


def test_revoking_without_a_key_changes_nothing_and_names_the_fix(tiny_course, learner, no_key, settings):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    settings.SHIPWRIGHT_SIGNING_KEY_DIR = no_key
    pass_lab(learner, tiny_course)
    certificate = services.certificate_award_if_complete(user=learner, course=tiny_course)
    settings.SHIPWRIGHT_SIGNING_KEY_DIR = no_key.parent / "gone"

    with pytest.raises(CommandError, match="not revoked: No signing key .*generate_signing_key"):
        call_command("revoke_certificate", certificate.public_id, "--reason", "Plagiarised")

    certificate.refresh_from_db()
    assert certificate.status == "valid"


@pytest.mark.docker
@pytest.mark.django_db(transaction=True)
def test_grade_without_a_key_passes_and_generate_signing_key_issues_the_certificate(
    tiny_course, learner, worker_env, tmp_path, settings
):
    key_dir = tmp_path / "keys"
    settings.SHIPWRIGHT_SIGNING_KEY_DIR = key_dir  # this process signs the status list with the same key
    env = {
        key: value
        for key, value in worker_env.items()
        if key not in ("SHIPWRIGHT_SIGNING_KEY", "SHIPWRIGHT_SIGNING_KEY_FILE", "SHIPWRIGHT_SIGNING_KEY_ID")
    }
    env["SHIPWRIGHT_SIGNING_KEY_DIR"] = str(key_dir)
    source = make_solution(tmp_path, "correct")

    graded = subprocess.run(
        [sys.executable, "manage.py", "grade", "tiny-course/tiny", str(source), "--json", "--user", learner.email],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert graded.returncode == 0, graded.stderr
    assert "Traceback" not in graded.stderr
    document = json.loads(graded.stdout)
    assert document["status"] == "passed" and document["certificate"] is None
    assert "is pending" in graded.stderr and "`python manage.py generate_signing_key`" in graded.stderr
    assert Submission.objects.get(pk=document["submission"]).status == Submission.Status.PASSED
    assert services.certificate_pending(user=learner, course=tiny_course)

    generated = subprocess.run(
        [sys.executable, "manage.py", "generate_signing_key"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert generated.returncode == 0, generated.stderr
    assert "Issued 1 pending certificate(s)." in generated.stdout
    certificate = Certificate.objects.get(user=learner, course=tiny_course)
    assert services.certificate_verify(certificate).fully_verified
    assert not services.certificate_pending(user=learner, course=tiny_course)
