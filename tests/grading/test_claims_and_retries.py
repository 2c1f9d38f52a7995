"""Claims, fencing, lost messages and platform retries, on the real database (no worker)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.services import api_token_create
from grading import services
from grading.intake import snapshot_from_directory
from grading.models import Submission
from tests.grading.tiny_lab import make_solution


@pytest.fixture
def queued(tiny_lab, learner, tmp_path, settings):
    snapshot = snapshot_from_directory(
        make_solution(tmp_path, "correct"), dest_dir=services.snapshot_dir(), limits=services.intake_limits()
    )
    return services.submission_create(user=learner, lab=tiny_lab, snapshot=snapshot, enforce_limits=False)


def _requeued_by_the_reaper(submission: Submission) -> None:
    later = timezone.now() + timedelta(seconds=120)
    assert services.submissions_reap_stale(now=later) == [str(submission.pk)]


def test_a_superseded_attempt_cannot_overwrite_the_new_attempt(queued):
    first = services.submission_claim(submission_id=queued.pk, worker="w1")
    old = Submission.objects.get(pk=queued.pk)
    _requeued_by_the_reaper(queued)
    second = services.submission_claim(submission_id=queued.pk, worker="w2")
    assert (first, second) == (1, 2)
    # The first worker comes back and reports a platform failure: dropped.
    assert services._platform_failure(old, "Docker engine error: boom", kind="sandbox") is None
    now = Submission.objects.get(pk=queued.pk)
    assert (now.status, now.attempts, now.claimed_by, now.error_message) == ("running", 2, "w2", "")


def test_a_retry_keeps_the_first_start_so_the_duration_does_not_restart(queued):
    services.submission_claim(submission_id=queued.pk, worker="w1")
    started = Submission.objects.get(pk=queued.pk).started_at
    _requeued_by_the_reaper(queued)
    services.submission_claim(submission_id=queued.pk, worker="w2")
    assert Submission.objects.get(pk=queued.pk).started_at == started


def test_a_queued_submission_whose_message_was_lost_is_sent_again(queued):
    row = Submission.objects.get(pk=queued.pk)
    assert row.dispatch_due_at is not None
    assert services.submissions_redispatch_lost(live_ids=set()) == []  # not overdue yet
    later = timezone.now() + timedelta(seconds=120)
    # Still waiting in the broker's queue (a backlog): left alone.
    assert services.submissions_redispatch_lost(live_ids={str(queued.pk)}, now=later) == []
    assert services.submissions_redispatch_lost(live_ids=set(), now=later) == [str(queued.pk)]
    assert Submission.objects.get(pk=queued.pk).dispatched_at > row.dispatched_at


def test_a_retry_waiting_on_its_countdown_is_not_taken_for_lost(queued):
    services.submission_enqueue(queued, countdown_s=600)
    later = timezone.now() + timedelta(seconds=300)
    assert services.submissions_redispatch_lost(live_ids=set(), now=later) == []
    assert services.submissions_redispatch_lost(live_ids=set(), now=later + timedelta(seconds=400)) == [str(queued.pk)]


def test_platform_failures_back_off_for_ten_minutes_and_more_before_giving_up(queued, settings):
    waited = 0.0
    for _ in range(settings.SHIPWRIGHT_PLATFORM_RETRIES):
        services.submission_claim(submission_id=queued.pk, worker="w")
        outcome = services._platform_failure(
            Submission.objects.get(pk=queued.pk), "Docker engine error: refused", kind="sandbox"
        )
        assert isinstance(outcome, services.Retry)
        waited += outcome.countdown_s
        row = Submission.objects.get(pk=queued.pk)
        assert (row.status, row.error_message) == ("queued", services.GRADING_DELAYED)
        assert "refused" in row.error_detail
    assert waited >= 600


def test_giving_up_tells_the_staff_and_says_so(queued, instructor, mailoutbox, settings):
    settings.SHIPWRIGHT_PLATFORM_RETRIES = 0
    services.submission_claim(submission_id=queued.pk, worker="w")
    services._platform_failure(Submission.objects.get(pk=queued.pk), "Docker engine error: refused", kind="sandbox")
    row = Submission.objects.get(pk=queued.pk)
    assert row.status == "error"
    assert row.error_message == services.GAVE_UP.format(attempts=1)
    assert [m.to for m in mailoutbox] == [[instructor.email]]
    assert str(queued.pk) in mailoutbox[0].body and "refused" in mailoutbox[0].body
    # Sent as the site, in text and HTML.
    assert mailoutbox[0].subject == f"[{settings.SITE_NAME}] {services.STAFF_ALERT_SUBJECT}"
    assert [kind for _, kind in mailoutbox[0].alternatives] == ["text/html"]
    assert str(queued.pk) in mailoutbox[0].alternatives[0][0]


def test_giving_up_with_nobody_to_tell_does_not_claim_anyone_was_told(queued, mailoutbox, settings):
    settings.SHIPWRIGHT_PLATFORM_RETRIES = 0
    services.submission_claim(submission_id=queued.pk, worker="w")
    services._platform_failure(Submission.objects.get(pk=queued.pk), "Docker engine error: refused", kind="sandbox")
    row = Submission.objects.get(pk=queued.pk)
    assert row.error_message == services.GAVE_UP_UNNOTIFIED.format(attempts=1)
    assert mailoutbox == []


def test_the_api_says_why_a_submission_waits_without_engine_text(queued, client, learner):
    services.submission_claim(submission_id=queued.pk, worker="w")
    services._platform_failure(
        Submission.objects.get(pk=queued.pk), "Docker engine error: 500 Server Error", kind="sandbox"
    )
    _, token = api_token_create(user=learner, name="CI")
    document = client.get(f"/api/v1/submissions/{queued.pk}", HTTP_AUTHORIZATION=f"Bearer {token}").json()
    assert document["status"] == "queued"
    assert document["status_detail"] == services.GRADING_DELAYED


def test_the_page_shows_a_lost_worker_instead_of_a_running_timer(queued, learner_client):
    services.submission_claim(submission_id=queued.pk, worker="w")
    stale = timezone.now() - timedelta(seconds=40)
    Submission.objects.filter(pk=queued.pk).update(
        current_stage="run", stage_index=1, stage_started_at=stale, stage_limit_s=60, heartbeat_at=stale
    )
    page = learner_client.get(f"/submissions/{queued.pk}/status/").content.decode()
    assert "The grading worker stopped responding 40 s ago" in page
    assert "s of 60 s)" not in page
