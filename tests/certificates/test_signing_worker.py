"""Certificates are issued and signed by the signing worker (the certificates queue),
never by the grading worker that ran the learner's code: a grading worker without
any key grades the last lab, and the signer issues the certificate."""

from __future__ import annotations

import pytest
import redis
from django.conf import settings
from django.test import Client

from certificates import services, tasks
from certificates.metrics import CertificatesCollector
from certificates.models import Certificate, CertificateEvent, PendingCertificate
from grading.models import Submission
from tests.certificates.test_issuing_and_verify_page import pass_lab
from tests.grading.test_worker import submit, wait_for
from tests.grading.tiny_lab import make_solution, make_tiny_course
from tests.grading.workers import Worker

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def tiny_course(transactional_db, tmp_path):
    from courses.importer import content_import
    from courses.models import Course

    content_import(make_tiny_course(tmp_path / "content"))
    return Course.objects.get(slug="tiny-course")


def queue_length(name: str) -> int:
    return redis.Redis.from_url(settings.CELERY_BROKER_URL).llen(name)


def issued_total() -> float:
    for family in CertificatesCollector().collect():
        if family.name == "shipwright_certificates_issued":
            return family.samples[0].value
    raise AssertionError("no issued counter")


@pytest.mark.docker
def test_a_grading_worker_without_a_key_grades_the_last_lab_and_the_signer_issues_the_certificate(
    tiny_course, learner, learner_client, worker_env, tmp_path
):
    no_keys = tmp_path / "no-keys"
    no_keys.mkdir()
    grading_log = tmp_path / "grading-worker.log"
    grading = Worker(
        worker_env,
        queues=[worker_env["SHIPWRIGHT_GRADING_QUEUE"], worker_env["SHIPWRIGHT_LOW_QUEUE"]],
        log=grading_log,
        SHIPWRIGHT_SIGNING_KEY_DIR=str(no_keys),
        SHIPWRIGHT_SIGNS_CERTIFICATES="0",
    )
    signer = None
    try:
        submission = submit(learner, tiny_course.labs.get(slug="tiny"), make_solution(tmp_path, "correct"))
        wait_for(lambda: Submission.objects.get(pk=submission.pk).finished, 240, "the verdict")
        assert Submission.objects.get(pk=submission.pk).status == Submission.Status.PASSED

        # The grading worker signed nothing: the certificate is owed, handed to the signer's queue.
        assert not Certificate.objects.exists()
        assert services.certificate_issuing(user=learner, course=tiny_course)
        # (sent once the grading transaction commits, a moment after the verdict shows)
        wait_for(lambda: queue_length(settings.SHIPWRIGHT_CERTIFICATES_QUEUE) == 1, 30, "the message to the signer")
        page = learner_client.get(f"/submissions/{submission.pk}/status/").content.decode()
        assert services.CERTIFICATE_ISSUING_TEXT.format(course="Tiny course") in page
        assert 'hx-get="/certificates/moment/tiny-course/?where=verdict"' in page

        signer = Worker(worker_env, queues=[worker_env["SHIPWRIGHT_CERTIFICATES_QUEUE"]])
        certificate = wait_for(lambda: Certificate.objects.filter(user=learner).first(), 60, "the certificate")
    finally:
        grading.stop()
        if signer is not None:
            signer.stop()

    assert services.certificate_verify(certificate).fully_verified
    assert not PendingCertificate.objects.exists()
    assert issued_total() == 1
    submission.refresh_from_db()
    assert submission.result["certificate"] == {
        "id": certificate.public_id,
        "url": f"/verify/{certificate.public_id}/",
    }
    # The poll now answers with the certificate, and asks no more.
    moment = learner_client.get("/certificates/moment/tiny-course/?where=verdict").content.decode()
    assert f'href="/verify/{certificate.public_id}/"' in moment and "hx-get" not in moment
    # Without a key and told it never signs, the grading worker did not ask for one at start.
    assert "certificates.W001" not in grading_log.read_text()


def test_duplicated_messages_to_two_signers_issue_one_certificate(tiny_course, learner, worker_env):
    pass_lab(learner, tiny_course)
    PendingCertificate.objects.create(user=learner, course=tiny_course, reason=services.CERTIFICATE_ISSUING)
    queue = worker_env["SHIPWRIGHT_CERTIFICATES_QUEUE"]
    for _ in range(4):
        tasks.issue_certificate.apply_async(args=[learner.pk, tiny_course.pk], queue=queue)
    signers = [Worker(worker_env, queues=[queue]), Worker(worker_env, queues=[queue])]
    try:
        wait_for(
            lambda: queue_length(queue) == 0 and Certificate.objects.filter(user=learner).exists(),
            60,
            "the messages taken and the certificate issued",
        )
    finally:
        for signer in signers:
            signer.stop()  # a warm shutdown: the task in hand finishes first

    assert queue_length(queue) == 0
    assert Certificate.objects.filter(user=learner).count() == 1
    assert CertificateEvent.objects.filter(action="issued").count() == 1
    assert issued_total() == 1
    assert not PendingCertificate.objects.exists()


def test_the_task_run_again_returns_the_same_certificate_and_issues_nothing(tiny_course, learner):
    pass_lab(learner, tiny_course)
    first = tasks.issue_certificate.run(learner.pk, tiny_course.pk)
    second = tasks.issue_certificate.run(learner.pk, tiny_course.pk)

    assert first == second == Certificate.objects.get(user=learner).public_id
    assert CertificateEvent.objects.filter(action="issued").count() == 1


def test_the_grading_transaction_owes_the_certificate_and_signs_nothing(tiny_course, learner, settings, tmp_path):
    settings.SHIPWRIGHT_SIGNING_KEY_DIR = tmp_path / "no-keys"  # a grading host has none
    pass_lab(learner, tiny_course)

    assert services.certificate_award_later(user=learner, course=tiny_course) is True

    assert not Certificate.objects.exists()
    assert services.certificate_issuing(user=learner, course=tiny_course)
    # A second pass owes nothing more.
    assert services.certificate_award_later(user=learner, course=tiny_course) is True
    assert PendingCertificate.objects.count() == 1


def test_the_moment_poll_shows_only_my_own_certificate(tiny_course, learner, other_learner):
    pass_lab(learner, tiny_course)
    certificate = services.certificate_award_if_complete(user=learner, course=tiny_course)
    other = Client()
    other.force_login(other_learner)

    mine = Client()
    mine.force_login(learner)
    assert certificate.public_id in mine.get("/certificates/moment/tiny-course/").content.decode()
    assert other.get("/certificates/moment/tiny-course/").content.decode().strip() == ""
    assert other.get("/certificates/moment/no-such-course/").content.decode().strip() == ""
    assert Client().get("/certificates/moment/tiny-course/").status_code == 302  # log in first
