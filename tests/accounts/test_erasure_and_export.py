"""Deleting an account erases; a withdrawn certificate names nobody; the export
streams (issue 8, section 5)."""

from __future__ import annotations

import hashlib
import json

import pytest
from django.test import Client
from django.utils import timezone

from certificates import services as certificates
from certificates.models import Certificate
from certificates.views import WITHDRAWN_HOLDER
from grading import services as grading
from grading.models import StageRun, Submission
from tests.grading.tiny_lab import make_tiny_course


@pytest.fixture
def tiny_lab(db, tmp_path):
    from courses.importer import content_import
    from labs.models import Lab

    content_import(make_tiny_course(tmp_path / "content"))
    return Lab.objects.get(slug="tiny")


@pytest.fixture
def snapshots(settings, tmp_path):
    settings.SHIPWRIGHT_SNAPSHOT_DIR = tmp_path / "snapshots"
    settings.SHIPWRIGHT_SNAPSHOT_DIR.mkdir()
    return settings.SHIPWRIGHT_SNAPSHOT_DIR


def graded(user, lab, folder, content: bytes, *, score=100.0, output="") -> Submission:
    """A finished submission with its snapshot on disk, stored as the worker stores it."""
    name = hashlib.sha256(content).hexdigest() + ".tar.gz"
    (folder / name).write_bytes(content)
    submission = Submission.objects.create(
        user=user,
        lab=lab,
        source_kind="archive",
        snapshot_path=name,
        snapshot_sha256=name[:64],
        status=Submission.Status.PASSED if score >= 60 else Submission.Status.FAILED,
        score=score,
        max_score=100.0,
        lab_hash=lab.content_hash,
        started_at=timezone.now(),
        finished_at=timezone.now(),
    )
    StageRun.objects.create(
        submission=submission, order=0, name="run", command="python main.py", status="ran", exit_code=0, output=output
    )
    submission.result = grading.submission_result_json(submission)
    submission.save(update_fields=["result"])
    return submission


def delete_account(client, email="learner@example.com", capture=None):
    with capture(execute=True):
        response = client.post("/profile/delete/", {"confirm": email})
    assert response.status_code == 302
    return response


def test_deleting_my_account_removes_my_snapshots_and_stage_output(
    tiny_lab, learner, other_learner, learner_client, snapshots, django_capture_on_commit_callbacks
):
    mine = graded(learner, tiny_lab, snapshots, b"my own code", output="my secret output")
    common = graded(learner, tiny_lab, snapshots, b"the unchanged starter", score=10, output="starter run")
    theirs = graded(other_learner, tiny_lab, snapshots, b"the unchanged starter", score=10, output="their run")
    delete_account(learner_client, capture=django_capture_on_commit_callbacks)
    assert not (snapshots / mine.snapshot_path).exists()
    assert not StageRun.objects.filter(output__in=["my secret output", "starter run"]).exists()
    assert not Submission.objects.filter(pk__in=[mine.pk, common.pk]).exists()
    # The same bytes, submitted by another learner, stay for them.
    assert (snapshots / theirs.snapshot_path).exists()
    assert StageRun.objects.get(submission=theirs).output == "their run"


def test_a_certificate_withdrawn_by_deleting_the_account_no_longer_names_the_holder(
    tiny_lab, learner, learner_client, snapshots, django_capture_on_commit_callbacks
):
    employer = Client()
    graded(learner, tiny_lab, snapshots, b"passing code")
    certificate = certificates.certificate_award_if_complete(user=learner, course=tiny_lab.course)
    url = f"/verify/{certificate.public_id}/"
    assert "Ada Learner" in employer.get(url).content.decode()
    assert "Ada Learner" in employer.get(url + "credential.json").content.decode()

    delete_account(learner_client, capture=django_capture_on_commit_callbacks)

    employer = Client()  # a stranger, not the (now logged out) learner's browser
    page = employer.get(url)
    text = page.content.decode()
    assert page.status_code == 200
    assert "Ada Learner" not in text
    assert WITHDRAWN_HOLDER in text and "withdrawn by holder" in text and "Revoked" in text
    assert employer.get(url + "credential.json").status_code == 404
    certificate.refresh_from_db()
    assert certificate.holder_name == "" and certificate.evidence == [] and "Ada" not in certificate.credential
    # The status list still says revoked, for verifiers holding a copy.
    assert certificate.status == "revoked"


def test_a_certificate_withdrawn_before_erasure_existed_hides_the_name_it_still_holds(
    tiny_lab, learner, employer, snapshots
):
    graded(learner, tiny_lab, snapshots, b"passing code")
    certificate = certificates.certificate_award_if_complete(user=learner, course=tiny_lab.course)
    certificates.certificate_revoke(certificate=certificate, reason=certificates.WITHDRAWN_BY_HOLDER, by="holder")
    certificate.refresh_from_db()
    assert certificate.holder_name == "Ada Learner"  # as rows withdrawn by older code are
    text = employer.get(f"/verify/{certificate.public_id}/").content.decode()
    assert "Ada Learner" not in text and WITHDRAWN_HOLDER in text
    assert employer.get(f"/verify/{certificate.public_id}/credential.json").status_code == 404


def test_a_certificate_revoked_for_another_reason_still_names_its_holder(tiny_lab, learner, employer, snapshots):
    graded(learner, tiny_lab, snapshots, b"passing code")
    certificate = certificates.certificate_award_if_complete(user=learner, course=tiny_lab.course)
    certificates.certificate_revoke(certificate=certificate, reason="Misconduct")
    text = employer.get(f"/verify/{certificate.public_id}/").content.decode()
    assert "Ada Learner" in text and "Misconduct" in text
    assert not Certificate.objects.filter(holder_name="").exists()


def test_the_data_export_streams_everything_including_full_stage_output(tiny_lab, learner, learner_client, snapshots):
    flood = "line of output\n" * 70_000  # about 1 MiB
    submission = graded(learner, tiny_lab, snapshots, b"noisy code", score=20, output=flood)
    graded(learner, tiny_lab, snapshots, b"quiet code", output="done")
    certificate = certificates.certificate_award_if_complete(user=learner, course=tiny_lab.course)
    response = learner_client.get("/profile/export.json")
    assert response.status_code == 200 and response.streaming
    assert response["Content-Disposition"] == 'attachment; filename="shipwright-my-data.json"'
    chunks = list(response.streaming_content)
    assert len(chunks) > 5 and max(len(chunk) for chunk in chunks) < 2 * len(flood)
    data = json.loads(b"".join(chunks))
    assert set(data) == {
        "account",
        "enrollments",
        "lessons_read",
        "knowledge_checks",
        "submissions",
        "certificates",
        "api_tokens",
    }
    assert data["account"]["email"] == "learner@example.com"
    exported = {s["id"]: s for s in data["submissions"]}
    assert exported[str(submission.pk)]["result"]["stages"][0]["output"] == flood
    assert [c["id"] for c in data["certificates"]] == [certificate.public_id]
