"""One intake service behind the web form, the API and `manage.py grade`: the same
source gets the same words everywhere (the form and the API show them on the
submission once the intake queue has run; the command refuses at once), the
response is chosen by the kind of rejection, and a rejection leaves no snapshot
file behind."""

from __future__ import annotations

import io
import uuid
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.services import api_token_create
from grading import services
from grading.models import Submission
from tests.grading.conftest import intake_all
from tests.grading.test_grade_command import grade
from tests.grading.test_views_and_api import zipped
from tests.grading.tiny_lab import SOLUTIONS, make_solution

API_URL = "/api/v1/labs/tiny-course/tiny/submissions"
FORM_URL = "/labs/tiny-course/tiny/submit/"


def unique_zip(name: str = "correct") -> bytes:
    """Bytes no earlier test stored (the snapshot directory is shared by the session),
    so a snapshot left behind shows as a new file."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("main.py", SOLUTIONS[name])
        archive.writestr("nonce.txt", uuid.uuid4().hex)
    return buffer.getvalue()


def hostile_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../../etc/evil", "x")
    return buffer.getvalue()


def snapshot_files(settings) -> set[str]:
    return {p.name for p in settings.SHIPWRIGHT_SNAPSHOT_DIR.glob("*.tar.gz")}


def form_messages(response) -> list[str]:
    return [str(m) for m in response.wsgi_request._messages]


@pytest.fixture
def enrolled(learner_client, tiny_lab):
    learner_client.post("/courses/tiny-course/enroll/")
    return learner_client


@pytest.fixture
def auth(learner):
    _, token = api_token_create(user=learner, name="CI")
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def test_a_hostile_archive_gets_the_same_words_from_the_form_the_api_and_the_command(
    enrolled, client, auth, tiny_lab, learner, tmp_path, settings
):
    before = snapshot_files(settings)  # the snapshot directory is shared by the session
    with pytest.raises(services.SourceRejected) as rejected:
        services.submission_create_from_source(
            user=learner, lab=tiny_lab, upload=SimpleUploadedFile("solution.zip", hostile_zip())
        )
    message = rejected.value.message
    assert "../../etc/evil" in message and "escapes" in message

    form = enrolled.post(FORM_URL, {"archive": SimpleUploadedFile("solution.zip", hostile_zip())})
    assert form.status_code == 302
    intake_all()
    page = enrolled.get(form["Location"]).content.decode()
    assert "Not accepted" in page and message.replace('"', "&quot;") in page

    api = client.post(API_URL, {"archive": SimpleUploadedFile("solution.zip", hostile_zip())}, **auth)
    assert api.status_code == 201
    intake_all()
    status = client.get(f"/api/v1/submissions/{api.json()['id']}", **auth).json()
    assert status["status"] == "rejected" and status["status_detail"] == message

    archive = tmp_path / "solution.zip"
    archive.write_bytes(hostile_zip())
    code, document, stderr = grade("tiny-course/tiny", str(archive), "--json")
    assert code == 2 and document is None
    assert stderr == f"grade: {message}\n"

    # The form's and the API's rejected rows stay (they show the message and count
    # towards the failed-intake throttle); the command writes nothing; no snapshot at all.
    assert set(Submission.objects.values_list("status", flat=True)) == {"rejected"}
    assert Submission.objects.count() == 2
    assert snapshot_files(settings) == before


def test_a_learner_in_the_cool_off_is_told_to_wait_on_the_form_and_gets_429_with_retry_after_from_the_api(
    enrolled, client, auth, learner, settings
):
    settings.SHIPWRIGHT_RESUBMIT_COOLOFF_S = 60
    enrolled.post(FORM_URL, {"archive": SimpleUploadedFile("solution.zip", zipped())})
    Submission.objects.update(status="failed")
    kept = snapshot_files(settings)

    # Different bytes each time, so a snapshot left behind would show as a new file.
    form = enrolled.post(FORM_URL, {"archive": SimpleUploadedFile("solution.zip", unique_zip("dishonest"))})
    waits = [m for m in form_messages(form) if m.startswith("Please wait ")]
    assert len(waits) == 1 and waits[0].endswith(" s before submitting this lab again.")

    api = client.post(API_URL, {"archive": SimpleUploadedFile("solution.zip", unique_zip("crashes"))}, **auth)
    assert api.status_code == 429
    seconds = int(api["Retry-After"])
    assert 0 < seconds <= 60
    assert api.json() == {"error": services.COOLOFF.format(seconds=seconds)}

    assert Submission.objects.count() == 1
    assert snapshot_files(settings) == kept


def test_a_learner_with_a_submission_being_graded_gets_429_from_the_api_and_the_message_on_the_form(
    enrolled, client, auth, learner, settings
):
    enrolled.post(FORM_URL, {"archive": SimpleUploadedFile("solution.zip", zipped())})
    kept = snapshot_files(settings)

    form = enrolled.post(FORM_URL, {"archive": SimpleUploadedFile("solution.zip", unique_zip("dishonest"))})
    [message] = [m for m in form_messages(form) if m.startswith(services.ACTIVE_SUBMISSION)]
    being_graded = Submission.objects.get(user=learner)
    assert f'href="{being_graded.get_absolute_url()}"' in message

    api = client.post(API_URL, {"archive": SimpleUploadedFile("solution.zip", unique_zip("crashes"))}, **auth)
    assert api.status_code == 429 and api.json() == {"error": services.ACTIVE_SUBMISSION}

    assert Submission.objects.count() == 1
    assert snapshot_files(settings) == kept


def test_the_command_grades_an_operator_source_even_while_the_learner_must_wait(
    enrolled, learner, tiny_lab, settings, tmp_path
):
    # The operator is not throttled: the limits are the learner's, the source rules are everyone's.
    enrolled.post(FORM_URL, {"archive": SimpleUploadedFile("solution.zip", zipped())})
    assert Submission.objects.get().status == "received"
    with pytest.raises(services.SubmissionThrottled):
        services.submission_create_from_source(
            user=learner, lab=tiny_lab, upload=SimpleUploadedFile("solution.zip", zipped("dishonest"))
        )
    code, document, _ = grade("tiny-course/tiny", str(make_solution(tmp_path, "correct")), "--user", learner.email)
    assert code == 0
    assert Submission.objects.filter(user=learner).count() == 2


def test_a_second_tab_is_refused_while_the_first_upload_waits_for_intake(enrolled, learner, settings):
    # The row exists from the moment the upload is stored, so the learner's one slot
    # is taken before any intake work: at most one intake per learner at a time.
    first = enrolled.post(FORM_URL, {"archive": SimpleUploadedFile("solution.zip", unique_zip("dishonest"))})
    second = enrolled.post(FORM_URL, {"archive": SimpleUploadedFile("solution.zip", unique_zip("crashes"))})
    assert any(m.startswith(services.ACTIVE_SUBMISSION) for m in form_messages(second))
    received = Submission.objects.get(user=learner)
    assert received.status == "received" and first["Location"] == received.get_absolute_url()
    uploads = {p.name for p in (settings.SHIPWRIGHT_SNAPSHOT_DIR / "uploads").iterdir()}
    assert str(received.pk) in uploads and len([u for u in uploads if u.startswith(".")]) == 0
    intake_all()
    received.refresh_from_db()
    assert received.status == "queued"
    assert str(received.pk) not in {p.name for p in (settings.SHIPWRIGHT_SNAPSHOT_DIR / "uploads").iterdir()}


def test_a_lab_without_checks_is_closed_to_the_api_with_400(client, auth, tiny_lab, settings):
    before = snapshot_files(settings)
    tiny_lab.spec = {**tiny_lab.spec, "stages": []}
    tiny_lab.save()
    assert not tiny_lab.gradeable
    api = client.post(API_URL, {"archive": SimpleUploadedFile("solution.zip", zipped())}, **auth)
    assert api.status_code == 400 and api.json() == {"error": services.LAB_NOT_GRADEABLE}
    assert not Submission.objects.exists()
    assert snapshot_files(settings) == before
