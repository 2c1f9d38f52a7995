"""Submitting from the lab page and the API; who may see what."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.services import api_token_create
from grading import services
from grading.models import Submission
from tests.grading.conftest import intake_all
from tests.grading.tiny_lab import SOLUTIONS


def zipped(name: str = "correct") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("main.py", SOLUTIONS[name])
    return buffer.getvalue()


@pytest.fixture
def enrolled(learner_client, tiny_lab):
    learner_client.post("/courses/tiny-course/enroll/")
    return learner_client


def submit(client, data: bytes = None, name: str = "solution.zip", **extra):
    payload = {"archive": SimpleUploadedFile(name, data if data is not None else zipped())} if data is not False else {}
    payload.update(extra)
    return client.post("/labs/tiny-course/tiny/submit/", payload)


def test_an_upload_is_received_at_once_then_queued_by_intake_and_its_page_follows(
    enrolled, learner, django_capture_on_commit_callbacks, monkeypatch
):
    intakes, gradings = [], []
    monkeypatch.setattr("grading.tasks.intake_submission.apply_async", lambda **kw: intakes.append(kw))
    monkeypatch.setattr("grading.tasks.grade_submission.apply_async", lambda **kw: gradings.append(kw))
    with django_capture_on_commit_callbacks(execute=True):
        response = submit(enrolled)
    submission = Submission.objects.get(user=learner)
    assert response.status_code == 302 and response["Location"] == f"/submissions/{submission.pk}/"
    # The request stored the upload and nothing else: no snapshot, no grading yet.
    assert submission.status == "received" and submission.snapshot_path == "" and submission.upload_sha256
    assert intakes and intakes[0]["args"] == [str(submission.pk)] and intakes[0]["queue"] == "intake"
    assert not gradings
    assert "Checking your upload" in enrolled.get(response["Location"]).content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        intake_all()
    submission.refresh_from_db()
    assert submission.status == "queued" and submission.source_kind == "archive" and submission.snapshot_path
    assert gradings and gradings[0]["args"] == [str(submission.pk)] and gradings[0]["queue"] == "grading"
    page = enrolled.get(response["Location"]).content.decode()
    assert "Queued" in page and "Position 1 in the queue" in page


def test_a_second_submission_while_one_runs_is_refused(enrolled, learner):
    submit(enrolled)
    response = submit(enrolled)
    assert Submission.objects.filter(user=learner).count() == 1
    messages = [str(m) for m in response.wsgi_request._messages]
    assert any(m.startswith(services.ACTIVE_SUBMISSION) for m in messages)


def test_the_cool_off_applies_per_lab(enrolled, learner, settings):
    settings.SHIPWRIGHT_RESUBMIT_COOLOFF_S = 60
    submit(enrolled)
    Submission.objects.update(status="failed")
    response = submit(enrolled)
    assert Submission.objects.count() == 1
    assert any("Please wait" in str(m) for m in response.wsgi_request._messages)


def test_a_hostile_archive_is_rejected_with_the_entry_named_and_nothing_kept(enrolled, settings):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../../etc/evil", "x")
    response = submit(enrolled, buffer.getvalue())
    intake_all()
    submission = Submission.objects.get()
    assert submission.status == "rejected" and submission.snapshot_path == "" and not submission.upload_sha256
    page = enrolled.get(response["Location"]).content.decode()
    assert "Not accepted" in page and "../../etc/evil" in page and "escapes" in page
    leftovers = [p for p in settings.SHIPWRIGHT_SNAPSHOT_DIR.glob("*") if p.name.startswith(".intake")]
    assert not leftovers
    assert not list((settings.SHIPWRIGHT_SNAPSHOT_DIR / "uploads").glob(str(submission.pk)))


def test_an_upload_over_the_cap_is_refused_before_it_is_stored(enrolled, settings):
    settings.SHIPWRIGHT_UPLOAD_MAX_BYTES = 1000
    response = submit(enrolled, b"x" * 5000)
    assert not Submission.objects.exists()
    assert any("larger than" in str(m) for m in response.wsgi_request._messages)


def test_giving_both_a_file_and_a_url_is_a_form_error(enrolled):
    response = submit(enrolled, git_url="https://example.invalid/repo.git")
    assert not Submission.objects.exists()
    assert any("not both" in str(m) for m in response.wsgi_request._messages)


def test_another_learner_gets_404_for_my_submission(enrolled, client, other_learner):
    submit(enrolled)
    submission = Submission.objects.get()
    client.force_login(other_learner)
    assert client.get(f"/submissions/{submission.pk}/").status_code == 404
    assert client.get(f"/submissions/{submission.pk}/status/").status_code == 404


def test_only_the_course_s_staff_see_a_lab_s_submissions_and_can_regrade(enrolled, client, instructor, learner):
    from courses.models import CourseStaff

    submit(enrolled)
    intake_all()
    assert enrolled.get("/instructor/labs/tiny-course/tiny/submissions/").status_code == 404
    client.force_login(instructor)  # site staff, but no role on the course yet
    assert client.get("/instructor/labs/tiny-course/tiny/submissions/").status_code == 404
    CourseStaff.objects.create(user=instructor, course=Submission.objects.get().lab.course, role="instructor")
    page = client.get("/instructor/labs/tiny-course/tiny/submissions/?status=queued&learner=learner").content.decode()
    assert "learner@example.com" in page
    submission = Submission.objects.get()
    Submission.objects.update(status="failed", score=10, max_score=100)
    client.post(f"/submissions/{submission.pk}/regrade/")
    submission.refresh_from_db()
    assert submission.status == "queued" and submission.low_priority
    csv = client.get("/instructor/courses/tiny-course/grades.csv").content.decode()
    assert csv.splitlines()[0].startswith("email,display_name,tiny")


def test_the_api_needs_a_token(client, tiny_lab):
    response = client.post(
        "/api/v1/labs/tiny-course/tiny/submissions", {"archive": SimpleUploadedFile("a.zip", zipped())}
    )
    assert response.status_code == 401 and "API token" in response.json()["error"]


def test_the_api_accepts_an_archive_and_returns_the_status_url(client, tiny_lab, learner):
    _, token = api_token_create(user=learner, name="CI")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    response = client.post(
        "/api/v1/labs/tiny-course/tiny/submissions", {"archive": SimpleUploadedFile("a.zip", zipped())}, **auth
    )
    assert response.status_code == 201
    body = response.json()
    status = client.get(body["status_url"].replace("http://testserver", ""), **auth)
    assert status.status_code == 200
    document = status.json()
    assert document["submission"] == body["id"] and document["status"] == "received"
    assert document["lab"] == "tiny-course/tiny"
    intake_all()
    assert client.get(body["status_url"].replace("http://testserver", ""), **auth).json()["status"] == "queued"


def test_a_revoked_token_stops_working(client, tiny_lab, learner):
    row, token = api_token_create(user=learner, name="CI")
    from accounts.services import api_token_revoke

    api_token_revoke(user=learner, token_id=row.pk)
    response = client.post(
        "/api/v1/labs/tiny-course/tiny/submissions",
        data=json.dumps({"git_url": "https://x.invalid/r.git"}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 401


def test_the_api_rejects_a_private_git_host_in_intake_and_says_why(client, tiny_lab, learner):
    _, token = api_token_create(user=learner, name="CI")
    response = client.post(
        "/api/v1/labs/tiny-course/tiny/submissions",
        data=json.dumps({"git_url": "https://10.0.0.1/repo.git"}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 201 and response.json()["status"] == "received"
    intake_all()
    status = client.get(f"/api/v1/submissions/{response.json()['id']}", HTTP_AUTHORIZATION=f"Bearer {token}").json()
    assert status["status"] == "rejected"
    assert status["status_detail"] == "10.0.0.1 resolves to a private address"


def test_the_profile_shows_a_new_token_once(learner_client):
    learner_client.post("/profile/tokens/", {"name": "GitHub Actions"})
    first = learner_client.get("/profile/").content.decode()
    second = learner_client.get("/profile/").content.decode()
    assert 'id="new-token">swp_' in first and "swp_" in first
    assert 'id="new-token"' not in second
