"""One intake service behind the web form, the API and `manage.py grade`: the same
source gets the same words everywhere, the response is chosen by the kind of
rejection, and a rejection leaves neither a row nor a snapshot file behind."""

from __future__ import annotations

import io
import uuid
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.services import api_token_create
from grading import services
from grading.models import Submission
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
    assert form.status_code == 302 and message in form_messages(form)

    api = client.post(API_URL, {"archive": SimpleUploadedFile("solution.zip", hostile_zip())}, **auth)
    assert api.status_code == 400 and api.json() == {"error": message}
    assert "Retry-After" not in api

    archive = tmp_path / "solution.zip"
    archive.write_bytes(hostile_zip())
    code, document, stderr = grade("tiny-course/tiny", str(archive), "--json")
    assert code == 2 and document is None
    assert stderr == f"grade: {message}\n"

    assert not Submission.objects.exists()
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
    assert Submission.objects.get().status == "queued"
    with pytest.raises(services.SubmissionThrottled):
        services.submission_create_from_source(
            user=learner, lab=tiny_lab, upload=SimpleUploadedFile("solution.zip", zipped("dishonest"))
        )
    code, document, _ = grade("tiny-course/tiny", str(make_solution(tmp_path, "correct")), "--user", learner.email)
    assert code == 0
    assert Submission.objects.filter(user=learner).count() == 2


def competing_submission_during_intake(monkeypatch, learner, tiny_lab):
    """The learner's other tab creates its row while this request is still snapshotting."""
    real = services.snapshot_from_upload

    def intake_then_other_tab(*args, **kwargs):
        snapshot = real(*args, **kwargs)
        other = real(
            SimpleUploadedFile("other.zip", unique_zip("crashes")),
            "other.zip",
            lab_kind=tiny_lab.kind,
            dest_dir=services.snapshot_dir(),
            limits=services.intake_limits(),
        )
        services.submission_create(user=learner, lab=tiny_lab, snapshot=other, enqueue=False)
        return snapshot

    monkeypatch.setattr(services, "snapshot_from_upload", intake_then_other_tab)


def test_a_submission_refused_after_its_snapshot_was_written_leaves_no_file_behind(
    learner, tiny_lab, settings, monkeypatch
):
    before = snapshot_files(settings)
    competing_submission_during_intake(monkeypatch, learner, tiny_lab)
    with pytest.raises(services.SubmissionThrottled) as throttled:
        services.submission_create_from_source(
            user=learner, lab=tiny_lab, upload=SimpleUploadedFile("solution.zip", unique_zip("dishonest"))
        )
    assert throttled.value.message == services.ACTIVE_SUBMISSION
    other = Submission.objects.get(user=learner)
    assert other.source_name == "other.zip"
    assert snapshot_files(settings) - before == {other.snapshot_path}
    assert (settings.SHIPWRIGHT_SNAPSHOT_DIR / other.snapshot_path).exists()


def test_a_refused_submission_keeps_a_snapshot_that_another_submission_uses(
    learner, other_learner, tiny_lab, settings, monkeypatch
):
    # The same bytes submitted earlier by someone else: the content-addressed file is theirs too.
    shared = unique_zip("dishonest")
    earlier = services.submission_create_from_source(
        user=other_learner, lab=tiny_lab, upload=SimpleUploadedFile("solution.zip", shared), enqueue=False
    )
    competing_submission_during_intake(monkeypatch, learner, tiny_lab)
    with pytest.raises(services.SubmissionThrottled):
        services.submission_create_from_source(
            user=learner, lab=tiny_lab, upload=SimpleUploadedFile("solution.zip", shared)
        )
    assert (settings.SHIPWRIGHT_SNAPSHOT_DIR / earlier.snapshot_path).exists()
    assert not Submission.objects.filter(user=learner, source_name="solution.zip").exists()


def test_a_lab_without_checks_is_closed_to_the_api_with_400(client, auth, tiny_lab, settings):
    before = snapshot_files(settings)
    tiny_lab.spec = {**tiny_lab.spec, "stages": []}
    tiny_lab.save()
    assert not tiny_lab.gradeable
    api = client.post(API_URL, {"archive": SimpleUploadedFile("solution.zip", zipped())}, **auth)
    assert api.status_code == 400 and api.json() == {"error": services.LAB_NOT_GRADEABLE}
    assert not Submission.objects.exists()
    assert snapshot_files(settings) == before
