"""Issuing certificates and the public verify page, on the real database."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest
from django.core.management import call_command
from django.utils import timezone

from certificates import keys, services
from certificates import status_list as bitstring
from certificates.models import Certificate
from certificates.verifier import verify_credential
from grading.models import Submission
from tests.grading.tiny_lab import make_tiny_course


@pytest.fixture
def tiny_course(db, tmp_path):
    from courses.importer import content_import
    from courses.models import Course

    content_import(make_tiny_course(tmp_path / "content"))
    return Course.objects.get(slug="tiny-course")


def pass_lab(user, course, slug="tiny", score=100.0):
    lab = course.labs.get(slug=slug)
    submission = Submission.objects.create(
        user=user,
        lab=lab,
        source_kind="directory",
        snapshot_path="x.tar.gz",
        snapshot_sha256="a" * 64,
        status=Submission.Status.PASSED,
        score=score,
        max_score=100.0,
        lab_hash=lab.content_hash,
        image="shipwright-lab:py311",
        image_digest="sha256:" + "b" * 64,
        started_at=timezone.now(),
        finished_at=timezone.now(),
    )
    return submission


@pytest.fixture
def certificate(tiny_course, learner):
    pass_lab(learner, tiny_course)
    issued = services.certificate_award_if_complete(user=learner, course=tiny_course)
    assert issued is not None
    return issued


def test_the_last_passing_requirement_issues_exactly_one_certificate(tiny_course, learner):
    pass_lab(learner, tiny_course)
    first = services.certificate_award_if_complete(user=learner, course=tiny_course)
    second = services.certificate_award_if_complete(user=learner, course=tiny_course)
    assert first is not None and second is None
    assert Certificate.objects.filter(user=learner).count() == 1
    assert len(first.public_id) >= 22  # at least 128 random bits
    assert first.events.get().action == "issued"


def test_certificate_ids_can_be_typed_as_a_command_argument():
    """`manage.py revoke_certificate ID`: an id starting with "-" would be read as an
    option (one in 64 random ids did, and made CI red once)."""
    ids = [services.new_public_id() for _ in range(1000)]
    assert not [i for i in ids if i.startswith("-")]
    assert len(set(ids)) == 1000 and min(len(i) for i in ids) >= 22


def test_a_failing_result_issues_nothing(tiny_course, learner):
    submission = pass_lab(learner, tiny_course)
    Submission.objects.filter(pk=submission.pk).update(status=Submission.Status.FAILED)
    assert services.certificate_award_if_complete(user=learner, course=tiny_course) is None


def test_the_credential_verifies_against_the_published_did_document(certificate, client):
    credential = json.loads(client.get(f"/verify/{certificate.public_id}/credential.json").content)
    did = client.get("/.well-known/did.json").json()
    status = client.get("/status/revocation").json()
    assert credential["@context"][0] == "https://www.w3.org/ns/credentials/v2"
    assert credential["proof"]["cryptosuite"] == "eddsa-rdfc-2022"
    assert credential["issuer"]["id"] == keys.issuer_did() == did["id"]
    assert credential["credentialStatus"]["type"] == "BitstringStatusListEntry"
    report = verify_credential(credential, did, status_list=status)
    assert report.fully_verified, report.verdict
    assert "learner@example.com" not in json.dumps(credential)


def test_an_employer_sees_a_valid_certificate_without_logging_in(certificate, employer):
    page = employer.get(f"/verify/{certificate.public_id}/").content.decode()
    assert "Valid certificate" in page
    assert "Ada Learner" in page and "Tiny certificate" in page
    assert "learner@example.com" not in page
    assert 'name="robots" content="noindex' in page
    for check in (
        "signature valid",
        "key listed by the issuer",
        "issuer matches the key",
        "not revoked",
        "dates valid",
    ):
        assert check in page


def test_tampering_in_the_database_shows_as_a_failed_check(certificate, employer):
    credential = json.loads(certificate.credential)
    credential["credentialSubject"]["name"] = "Mallory"
    Certificate.objects.filter(pk=certificate.pk).update(credential=json.dumps(credential))
    page = employer.get(f"/verify/{certificate.public_id}/").content.decode()
    assert "Not valid" in page and "Valid certificate" not in page


def test_unknown_and_hidden_certificates_give_the_same_404(certificate, employer):
    unknown = employer.get("/verify/doesnotexist/")
    Certificate.objects.filter(pk=certificate.pk).update(public=False)
    hidden = employer.get(f"/verify/{certificate.public_id}/")
    assert unknown.status_code == hidden.status_code == 404
    assert unknown.content == hidden.content
    assert employer.get(f"/verify/{certificate.public_id}/credential.json").status_code == 404


def test_revoking_sets_the_status_bit_and_the_page_says_revoked(certificate, employer):
    out = io.StringIO()
    call_command("revoke_certificate", certificate.public_id, "--reason", "Plagiarised capstone", stdout=out)
    page = employer.get(f"/verify/{certificate.public_id}/").content.decode()
    assert "Revoked" in page and "Plagiarised capstone" in page
    status = employer.get("/status/revocation").json()
    bits = bitstring.decode(status["credentialSubject"]["encodedList"])
    assert bitstring.is_set(bits, certificate.status_index)
    credential = json.loads(employer.get(f"/verify/{certificate.public_id}/credential.json").content)
    report = verify_credential(credential, employer.get("/.well-known/did.json").json(), status_list=status)
    assert not report["not revoked"].passed


def test_suspending_and_reinstating_are_recorded(certificate, instructor):
    services.certificate_suspend(certificate=certificate, reason="Under review", by=instructor)
    certificate.refresh_from_db()
    assert certificate.status == "suspended"
    services.certificate_reinstate(certificate=certificate, by=instructor)
    certificate.refresh_from_db()
    assert certificate.status == "valid"
    assert [e.action for e in certificate.events.all()] == ["issued", "suspended", "reinstated"]
    assert certificate.events.last().by_label == "instructor@example.com"


def test_rotation_keeps_old_credentials_verifiable(certificate, client, settings, tmp_path):
    import shutil

    folder = tmp_path / "keys"
    shutil.copytree(settings.SHIPWRIGHT_SIGNING_KEY_DIR, folder)
    settings.SHIPWRIGHT_SIGNING_KEY_DIR = folder
    call_command("generate_signing_key", stdout=io.StringIO())
    did = client.get("/.well-known/did.json").json()
    assert len(did["assertionMethod"]) == 2
    credential = json.loads(certificate.credential)
    assert verify_credential(credential, did, status_list=client.get("/status/revocation").json()).fully_verified


def test_the_offline_verifier_accepts_the_file_and_rejects_a_tampered_one(certificate, client, tmp_path):
    (tmp_path / "credential.json").write_bytes(client.get(f"/verify/{certificate.public_id}/credential.json").content)
    (tmp_path / "did.json").write_bytes(client.get("/.well-known/did.json").content)
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(__import__("pathlib").Path(__file__).resolve().parents[2])}
    run = subprocess.run(
        [sys.executable, "-m", "certificates.verifier", "credential.json", "--did", "did.json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "revocation status not checked (offline)" in run.stdout
    tampered = json.loads((tmp_path / "credential.json").read_text())
    tampered["validFrom"] = "2001-01-01T00:00:00Z"
    (tmp_path / "credential.json").write_text(json.dumps(tampered))
    run = subprocess.run(
        [sys.executable, "-m", "certificates.verifier", "credential.json", "--did", "did.json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 1


def test_verify_endpoints_are_rate_limited_per_client(certificate, client, settings):
    settings.SHIPWRIGHT_VERIFY_RATE_LIMIT = (3, 60)
    codes = [client.get(f"/verify/{certificate.public_id}/").status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]


def test_the_dashboard_offers_pdf_json_and_linkedin(certificate, learner_client):
    page = learner_client.get("/dashboard/").content.decode()
    assert f"/verify/{certificate.public_id}/" in page
    assert "linkedin.com/profile/add" in page
    pdf = learner_client.get(f"/certificates/{certificate.public_id}/certificate.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


def test_another_learner_cannot_download_my_pdf(certificate, client, other_learner):
    client.force_login(other_learner)
    assert client.get(f"/certificates/{certificate.public_id}/certificate.pdf").status_code == 404


def test_hiding_evidence_removes_scores_from_the_page(certificate, learner_client, employer):
    learner_client.post(f"/certificates/{certificate.public_id}/settings/", {"public": "on"})
    certificate.refresh_from_db()
    assert certificate.public and not certificate.show_evidence
    assert "Evidence" not in employer.get(f"/verify/{certificate.public_id}/").content.decode()


def test_deleting_the_account_revokes_with_withdrawn_by_holder(certificate, learner_client, learner, employer):
    response = learner_client.post("/profile/delete/", {"confirm": "learner@example.com"})
    assert response.status_code == 302
    certificate.refresh_from_db()
    assert certificate.user is None and certificate.status == "revoked"
    assert certificate.status_reason == "withdrawn by holder"
    assert "withdrawn by holder" in employer.get(f"/verify/{certificate.public_id}/").content.decode()


def test_the_data_export_holds_my_certificates_and_submissions(certificate, learner_client):
    data = json.loads(b"".join(learner_client.get("/profile/export.json").streaming_content))
    assert data["account"]["email"] == "learner@example.com"
    assert data["certificates"][0]["id"] == certificate.public_id
    assert len(data["submissions"]) == 1


def test_the_404_page_sets_no_cookie_and_reveals_nothing(certificate, employer):
    response = employer.get("/verify/doesnotexist/")
    assert response.status_code == 404
    assert not response.cookies
    assert "doesnotexist" not in response.content.decode()


def test_instructors_revoke_and_suspend_from_the_admin_with_a_reason(certificate, client, instructor):
    instructor.is_superuser = True
    instructor.save()
    client.force_login(instructor)
    url = "/admin/certificates/certificate/"
    selected = {"_selected_action": [certificate.pk], "index": 0}
    client.post(url, {**selected, "action": "suspend", "reason": ""})
    certificate.refresh_from_db()
    assert certificate.status == "valid"
    client.post(url, {**selected, "action": "suspend", "reason": "Under review"})
    certificate.refresh_from_db()
    assert certificate.status == "suspended" and certificate.status_reason == "Under review"
    client.post(url, {**selected, "action": "revoke", "reason": "Misconduct"})
    certificate.refresh_from_db()
    assert certificate.status == "revoked"
    assert certificate.events.last().by_label == "instructor@example.com"
