"""Regrades run in the background and never block a learner (issue 8, section 4)."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from grading import services, tasks, views
from grading.models import Submission
from tests.factories import UserFactory
from tests.grading.tiny_lab import SOLUTIONS


def zipped() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("main.py", SOLUTIONS["correct"])
    return buffer.getvalue()


def attempt(user, lab, status=Submission.Status.FAILED, **fields) -> Submission:
    finished = status in Submission.FINISHED
    return Submission.objects.create(
        user=user,
        lab=lab,
        source_kind="archive",
        snapshot_path=fields.pop("snapshot_path", "a" * 64 + ".tar.gz"),
        snapshot_sha256="a" * 64,
        status=status,
        score=40.0 if finished else None,
        max_score=100.0 if finished else None,
        started_at=timezone.now() if finished else None,
        finished_at=timezone.now() if finished else None,
        **fields,
    )


@pytest.fixture
def sent(monkeypatch):
    """Messages the code hands to the broker, captured instead of sent."""
    messages = []
    monkeypatch.setattr("grading.tasks.grade_submission.apply_async", lambda **kw: messages.append(("grade", kw)))
    monkeypatch.setattr("grading.tasks.regrade_lab.apply_async", lambda **kw: messages.append(("regrade_lab", kw)))
    return messages


def messages_of(response) -> list[str]:
    return [str(m) for m in response.wsgi_request._messages]


def test_regrade_all_enqueues_one_background_task_and_says_how_many(
    tiny_lab, learner, other_learner, instructor_client, sent, django_capture_on_commit_callbacks
):
    attempt(learner, tiny_lab)
    attempt(learner, tiny_lab, status=Submission.Status.PASSED)
    attempt(other_learner, tiny_lab, status=Submission.Status.ERROR)
    pending = attempt(other_learner, tiny_lab, status=Submission.Status.QUEUED)
    with django_capture_on_commit_callbacks(execute=True):
        response = instructor_client.post("/instructor/labs/tiny-course/tiny/regrade/")
    assert response.status_code == 302
    assert response["Location"] == "/instructor/labs/tiny-course/tiny/submissions/"
    assert views.REGRADE_ALL_QUEUED.format(count=3) in messages_of(response)
    # Nothing was regraded in the request: one task was handed to the low queue.
    assert sent == [("regrade_lab", {"args": [tiny_lab.pk], "queue": "low"})]
    assert Submission.objects.filter(status=Submission.Status.QUEUED).get() == pending


def test_the_regrade_task_queues_every_finished_submission_on_the_low_queue_once(
    tiny_lab, learner, other_learner, sent, django_capture_on_commit_callbacks
):
    finished = [attempt(learner, tiny_lab), attempt(other_learner, tiny_lab, status=Submission.Status.PASSED)]
    running = attempt(learner, tiny_lab, status=Submission.Status.RUNNING)
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.regrade_lab(tiny_lab.pk) == 2
    with django_capture_on_commit_callbacks(execute=True):
        # A redelivered message finds them queued already.
        assert tasks.regrade_lab(tiny_lab.pk) == 0
    assert sorted(kw["args"][0] for _, kw in sent) == sorted(str(s.pk) for s in finished)
    assert {kw["queue"] for _, kw in sent} == {"low"}
    for submission in finished:
        submission.refresh_from_db()
        assert submission.status == Submission.Status.QUEUED and submission.low_priority
    running.refresh_from_db()
    assert running.status == Submission.Status.RUNNING and not running.low_priority


def test_a_learner_keeps_submitting_while_their_old_submission_is_regraded(tiny_lab, learner, learner_client, sent):
    learner_client.post("/courses/tiny-course/enroll/")
    old = attempt(learner, tiny_lab)
    assert services.submission_regrade(submission=old)
    Submission.objects.filter(pk=old.pk).update(status=Submission.Status.RUNNING)
    response = learner_client.post(
        "/labs/tiny-course/tiny/submit/", {"archive": SimpleUploadedFile("solution.zip", zipped())}
    )
    new = Submission.objects.exclude(pk=old.pk).get(user=learner)
    assert response["Location"] == f"/submissions/{new.pk}/"
    assert not any(services.ACTIVE_SUBMISSION in m for m in messages_of(response))
    # Both are now in flight; the new one is the learner's own and still holds the slot.
    assert Submission.objects.filter(user=learner).active().count() == 2
    with pytest.raises(services.SubmissionRejected, match=services.ACTIVE_SUBMISSION):
        services.submission_check_allowed(user=learner, lab=tiny_lab)


def test_regrading_the_learner_s_pending_submission_leaves_it_theirs(tiny_lab, learner, instructor_client, sent):
    pending = attempt(learner, tiny_lab, status=Submission.Status.QUEUED)
    response = instructor_client.post(f"/submissions/{pending.pk}/regrade/")
    assert views.REGRADE_REFUSED in messages_of(response)
    pending.refresh_from_db()
    assert pending.status == Submission.Status.QUEUED and not pending.low_priority
    assert sent == []
    # It still counts as the learner's active submission: no second one sneaks in.
    with pytest.raises(services.SubmissionRejected, match=services.ACTIVE_SUBMISSION):
        services.submission_check_allowed(user=learner, lab=tiny_lab)


def test_a_queued_regrade_does_not_block_any_of_many_learners(tiny_lab, sent, django_capture_on_commit_callbacks):
    learners = [UserFactory() for _ in range(5)]
    for user in learners:
        attempt(user, tiny_lab)
    with django_capture_on_commit_callbacks(execute=True):
        tasks.regrade_lab(tiny_lab.pk)
    assert Submission.objects.active().count() == 5
    for user in learners:
        services.submission_check_allowed(user=user, lab=tiny_lab)  # raises if blocked


def test_a_submission_whose_snapshot_was_removed_is_not_regraded(tiny_lab, learner, instructor_client, sent):
    pruned = attempt(learner, tiny_lab, snapshot_path="")
    response = instructor_client.post(f"/submissions/{pruned.pk}/regrade/")
    assert views.REGRADE_REFUSED in messages_of(response)
    pruned.refresh_from_db()
    assert pruned.status == Submission.Status.FAILED and sent == []
