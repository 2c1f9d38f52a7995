"""Intake off the request path: what the request does (store, throttle, refuse while
streaming), what the intake queue does after it, and whose address counts."""

from __future__ import annotations

import io
import textwrap
import uuid
import zipfile
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import RequestFactory
from django.utils import timezone

from accounts.services import api_token_create
from config.client import client_ip
from grading import services
from grading.models import Submission
from tests.grading.conftest import intake_all
from tests.grading.tiny_lab import SOLUTIONS

API_URL = "/api/v1/labs/tiny-course/tiny/submissions"
FORM_URL = "/labs/tiny-course/tiny/submit/"


def unique_zip(name: str = "correct", *, traversal: bool = False) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../../etc/evil" if traversal else "main.py", textwrap.dedent(SOLUTIONS[name]))
        archive.writestr("nonce.txt", uuid.uuid4().hex)
    return buffer.getvalue()


def bomb_zip() -> bytes:
    """A few KB that expand past any sane cap."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("main.py", textwrap.dedent(SOLUTIONS["correct"]))
        archive.writestr("zeros.bin", b"\0" * (3 * 1024 * 1024))
    return buffer.getvalue()


def stored_uploads(settings) -> set[str]:
    folder = settings.SHIPWRIGHT_SNAPSHOT_DIR / "uploads"
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


@pytest.fixture
def auth(learner):
    _, token = api_token_create(user=learner, name="CI")
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


@pytest.fixture
def enrolled(learner_client, tiny_lab):
    learner_client.post("/courses/tiny-course/enroll/")
    return learner_client


def finish_all() -> None:
    Submission.objects.update(status="failed", finished_at=timezone.now())


# --- the request only stores ---------------------------------------------------------


def test_the_form_answers_received_without_unpacking_and_the_page_later_shows_intake_s_words(
    enrolled, settings, monkeypatch
):
    def never(*args, **kwargs):
        raise AssertionError("the request unpacked or cloned")

    for name in ("snapshot_from_upload", "snapshot_from_git", "snapshot_from_path_or_url"):
        monkeypatch.setattr(services, name, never)
    settings.SHIPWRIGHT_UNPACKED_MAX_BYTES = 1024 * 1024
    sources = [
        ({"archive": SimpleUploadedFile("bomb.zip", bomb_zip())}, "expands past the 1 MB limit"),
        (
            {"archive": SimpleUploadedFile("s.zip", unique_zip(traversal=True))},
            "archive entry &quot;../../etc/evil&quot; escapes the submission",
        ),
        ({"git_url": "https://10.0.0.1/repo.git"}, "10.0.0.1 resolves to a private address"),
        ({"git_url": "https://exa mple.com/r.git"}, "is not a valid git URL"),
    ]
    pages, received = [], []
    for data, _ in sources:
        response = enrolled.post(FORM_URL, data)
        submission = Submission.objects.get(pk=response["Location"].split("/")[2])
        assert submission.status == "received"
        pages.append(response["Location"])
        received.append(submission.pk)
        Submission.objects.filter(pk=submission.pk).update(status="failed")  # free the slot for the next one
    Submission.objects.filter(pk__in=received).update(status="received")
    monkeypatch.undo()
    intake_all()
    for location, (_, words) in zip(pages, sources, strict=True):
        page = enrolled.get(location).content.decode()
        assert "Not accepted" in page and words in page
    assert not {str(pk) for pk in received} & stored_uploads(settings)


def test_the_page_of_an_accepted_upload_moves_from_received_to_queued(enrolled):
    response = enrolled.post(FORM_URL, {"archive": SimpleUploadedFile("s.zip", unique_zip())})
    assert "Checking your upload" in enrolled.get(response["Location"]).content.decode()
    intake_all()
    assert "Position 1 in the queue" in enrolled.get(response["Location"]).content.decode()


def test_an_api_upload_over_the_cap_is_refused_with_413_while_it_streams_and_leaves_nothing(
    client, auth, tiny_lab, settings
):
    settings.SHIPWRIGHT_UPLOAD_MAX_BYTES = 1000
    before = stored_uploads(settings)
    # Small enough that the declared length passes; the handler stops it mid-stream.
    response = client.post(API_URL, {"archive": SimpleUploadedFile("a.zip", b"x" * 5000)}, **auth)
    assert response.status_code == 413
    assert response.json() == {"error": "The upload is larger than the 0.000953674 MB limit."}
    # Declared far over the cap: refused before the body is read.
    response = client.post(API_URL, {"archive": SimpleUploadedFile("a.zip", b"x" * 200_000)}, **auth)
    assert response.status_code == 413
    assert not Submission.objects.exists()
    assert stored_uploads(settings) == before
    assert not [p for p in settings.SHIPWRIGHT_SNAPSHOT_DIR.iterdir() if p.name.startswith(".upload-")]


def test_an_api_upload_of_the_wrong_kind_is_refused_at_once_with_400(client, auth, tiny_lab):
    response = client.post(API_URL, {"archive": SimpleUploadedFile("a.rar", b"x")}, **auth)
    assert response.status_code == 400
    assert response.json() == {"error": '"a.rar" is not a .zip, .tar.gz or .tgz archive'}
    assert not Submission.objects.exists()


def test_one_intake_per_learner_at_a_time_from_the_api(client, auth, tiny_lab, learner):
    first = client.post(API_URL, {"archive": SimpleUploadedFile("a.zip", unique_zip())}, **auth)
    second = client.post(API_URL, {"archive": SimpleUploadedFile("a.zip", unique_zip())}, **auth)
    assert first.status_code == 201 and first.json()["status"] == "received"
    assert second.status_code == 429 and second.json() == {"error": services.ACTIVE_SUBMISSION}
    assert Submission.objects.filter(user=learner).count() == 1


def test_a_lost_intake_message_is_sent_again_by_the_reaper(enrolled, monkeypatch, settings):
    sent = []
    monkeypatch.setattr("grading.tasks.intake_submission.apply_async", lambda **kw: sent.append(kw))
    enrolled.post(FORM_URL, {"archive": SimpleUploadedFile("s.zip", unique_zip())})
    submission = Submission.objects.get()
    assert services.submissions_redispatch_lost() == []  # not overdue yet
    later = timezone.now() + timedelta(seconds=services.budget.LOST_MESSAGE_S + settings.SHIPWRIGHT_GIT_TIMEOUT_S + 200)
    assert services.submissions_redispatch_lost(live_ids={str(submission.pk)}, now=later) == []  # still in the queue
    assert services.submissions_redispatch_lost(live_ids=set(), now=later) == [str(submission.pk)]
    # Sent after commit; the row records it, so it is not sent again at once.
    submission.refresh_from_db()
    assert submission.status == "received" and submission.dispatched_at is not None


def test_the_intake_of_a_command_line_row_whose_process_died_is_rejected_not_stuck(learner, tiny_lab):
    submission = services.submission_receive(
        user=learner, lab=tiny_lab, path="/nowhere", enforce_limits=False, enqueue=False
    )
    services.submission_intake(submission.pk)  # what the reaper's re-sent message does
    submission.refresh_from_db()
    assert submission.status == "rejected" and submission.error_message == services.INTAKE_SOURCE_GONE


# --- throttles -------------------------------------------------------------------------


def test_a_learner_who_submitted_too_often_waits_with_retry_after(client, auth, tiny_lab, settings):
    settings.SHIPWRIGHT_SUBMISSIONS_PER_LEARNER = 2
    for _ in range(2):
        assert client.post(API_URL, {"archive": SimpleUploadedFile("a.zip", unique_zip())}, **auth).status_code == 201
        finish_all()
    response = client.post(API_URL, {"archive": SimpleUploadedFile("a.zip", unique_zip())}, **auth)
    assert response.status_code == 429
    seconds = int(response["Retry-After"])
    assert 0 < seconds <= settings.SHIPWRIGHT_THROTTLE_WINDOW_S
    assert response.json() == {"error": services.TOO_MANY_SUBMISSIONS.format(count=2, minutes=60, seconds=seconds)}
    assert Submission.objects.count() == 2


def test_a_learner_whose_sources_were_refused_too_often_waits(enrolled, settings):
    settings.SHIPWRIGHT_REJECTED_PER_LEARNER = 2
    for _ in range(2):
        enrolled.post(FORM_URL, {"archive": SimpleUploadedFile("s.zip", unique_zip(traversal=True))})
        intake_all()
    response = enrolled.post(FORM_URL, {"archive": SimpleUploadedFile("s.zip", unique_zip())})
    (message,) = [str(m) for m in response.wsgi_request._messages if "not accepted" in str(m)]
    assert message.startswith("2 of your submissions in the last 60 minutes were not accepted. Please wait ")
    assert Submission.objects.count() == 2


def test_submissions_and_refusals_are_also_counted_per_client_address(
    client, tiny_lab, learner, other_learner, settings
):
    settings.SHIPWRIGHT_SUBMISSIONS_PER_ADDRESS = 2
    settings.SHIPWRIGHT_REJECTED_PER_ADDRESS = 1
    tokens = {u: api_token_create(user=u, name="CI")[1] for u in (learner, other_learner)}

    def post(user, address, data: bytes):
        return client.post(
            API_URL,
            {"archive": SimpleUploadedFile("a.zip", data)},
            HTTP_AUTHORIZATION=f"Bearer {tokens[user]}",
            REMOTE_ADDR=address,
        )

    assert post(learner, "203.0.113.5", unique_zip(traversal=True)).status_code == 201
    intake_all()  # rejected: one refusal from this address
    refused = post(other_learner, "203.0.113.5", unique_zip())
    assert refused.status_code == 429 and "were not accepted" in refused.json()["error"]
    assert post(other_learner, "198.51.100.7", unique_zip()).status_code == 201
    finish_all()

    settings.SHIPWRIGHT_REJECTED_PER_ADDRESS = 0
    assert post(other_learner, "203.0.113.5", unique_zip()).status_code == 201  # the second from this address
    finish_all()
    third = post(learner, "203.0.113.5", unique_zip())
    assert third.status_code == 429 and third.json()["error"].startswith("You have made 2 submissions")
    assert set(Submission.objects.values_list("client_ip", flat=True)) == {"203.0.113.5", "198.51.100.7"}


# --- trusted proxies ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trusted", "forwarded", "remote", "client"),
    [
        (0, "", "203.0.113.5", "203.0.113.5"),
        (0, "198.51.100.1", "203.0.113.5", "203.0.113.5"),  # no proxy configured: the header is the client's
        (1, "198.51.100.1", "10.0.0.2", "198.51.100.1"),
        (1, "6.6.6.6, 198.51.100.1", "10.0.0.2", "198.51.100.1"),  # spoofed entry on the left ignored
        (2, "6.6.6.6, 198.51.100.1, 10.0.0.3", "10.0.0.2", "198.51.100.1"),
        (2, "198.51.100.1,10.0.0.3", "10.0.0.2", "198.51.100.1"),
        (1, "", "10.0.0.2", "10.0.0.2"),  # a request that bypassed the proxy
        (1, "not-an-address", "10.0.0.2", ""),
    ],
)
def test_the_client_address_is_read_through_the_trusted_proxies_only(settings, trusted, forwarded, remote, client):
    settings.SHIPWRIGHT_TRUSTED_PROXIES = trusted
    extra = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded else {}
    request = RequestFactory().get("/", REMOTE_ADDR=remote, **extra)
    assert client_ip(request) == client


def test_employers_behind_one_proxy_have_a_verify_bucket_each(client, settings, db):
    from django.core.cache import cache

    cache.clear()
    settings.SHIPWRIGHT_TRUSTED_PROXIES = 1
    settings.SHIPWRIGHT_VERIFY_RATE_LIMIT = (1, 60)
    url = f"/verify/{uuid.uuid4()}/"

    def get(employer: str, spoof: str = ""):
        forwarded = f"{spoof}, {employer}" if spoof else employer
        return client.get(url, REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=forwarded).status_code

    assert get("198.51.100.1") != 429
    assert get("198.51.100.1") == 429
    assert get("198.51.100.1", spoof="192.0.2.99") == 429  # a forged left entry does not buy a new bucket
    assert get("198.51.100.2") != 429


def test_the_form_records_the_client_behind_the_proxy(enrolled, settings):
    settings.SHIPWRIGHT_TRUSTED_PROXIES = 1
    enrolled.post(
        FORM_URL,
        {"archive": SimpleUploadedFile("s.zip", unique_zip())},
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.1",
    )
    assert Submission.objects.get().client_ip == "198.51.100.1"


def test_a_fault_of_ours_during_intake_ends_in_error_not_a_rejection_and_not_for_ever(enrolled, settings, monkeypatch):
    from grading import tasks

    enrolled.post(FORM_URL, {"archive": SimpleUploadedFile("s.zip", unique_zip())})
    submission = Submission.objects.get()

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in intake")

    monkeypatch.setattr(services, "snapshot_from_upload", broken)
    tasks.intake_submission.apply(args=[str(submission.pk)])
    submission.refresh_from_db()
    assert submission.status == "error" and submission.error_message == services.INTAKE_FAILED
    assert "a bug in intake" in submission.error_detail
    assert str(submission.pk) not in stored_uploads(settings)
    assert services.submissions_redispatch_lost(now=timezone.now() + timedelta(hours=1)) == []
