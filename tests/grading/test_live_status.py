"""The live part of the submission page: stage counter, bar, verdict swap and its one
announcement, failing checks first, and the queue estimate (workers counted)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from grading.models import CheckResult, GradingWorker, Submission
from grading.queue_estimate import overlapping, queue_estimate, verdict_wait_s
from tests.grading.test_best_attempt import attempt


@pytest.mark.parametrize(
    ("running_left", "queued_ahead", "graders", "expected"),
    [
        ([], [], 1, 4.0),  # a free worker: just the run
        ([3.0], [4.0, 4.0], 1, 15.0),  # one worker: everything in turn
        ([3.0], [4.0, 4.0], 2, 8.0),  # two workers share the queue
        ([3.0], [4.0, 4.0], 4, 4.0),  # more workers than work
        ([2.0], [], 0, 6.0),  # a run in progress proves a worker exists
        ([-5.0], [], 1, 4.0),  # an overdue run is about to end, not in the past
        ([1.0, 2.0], [10.0], 2, 6.0),  # the queued one takes the first free slot
    ],
)
def test_the_wait_is_simulated_over_the_workers_slots(running_left, queued_ahead, graders, expected):
    assert verdict_wait_s(running_left_s=running_left, queued_ahead_s=queued_ahead, own_s=4.0, graders=graders) == (
        expected
    )


T0 = timezone.now()


def at(seconds: float):
    return T0 + timedelta(seconds=seconds)


def test_runs_that_shared_the_machine_are_told_apart_from_runs_alone():
    runs = [("a", at(0), at(4)), ("b", at(10), at(16)), ("c", at(20), at(26))]
    others = [*runs, ("x", at(12), at(13)), ("y", at(25), None)]  # y is still running
    assert overlapping(runs, others) == ([4.0], [6.0, 6.0])


def test_a_burst_is_estimated_from_runs_that_shared_the_machine(learner, other_learner, tiny_lab):
    finished_runs(other_learner, tiny_lab, 4.0, 4.0, 4.0)  # alone
    for _ in range(2):  # two at once, slower
        attempt(other_learner, tiny_lab, "passed", 100, started_at=at(-100), finished_at=at(-94))
    worker("celery@a")
    worker("celery@b")
    alone = attempt(learner, tiny_lab, "queued", None)
    assert queue_estimate(alone).typical_s == 4.0  # nobody else: it runs alone
    attempt(other_learner, tiny_lab, "queued", None)
    mine = attempt(other_learner, tiny_lab, "queued", None)
    assert queue_estimate(mine).typical_s == 6.0


def worker(name: str, *, queues=("grading",), slots: int = 1, seen_s_ago: float = 0) -> GradingWorker:
    return GradingWorker.objects.create(
        name=name, queues=list(queues), slots=slots, seen_at=timezone.now() - timedelta(seconds=seen_s_ago)
    )


def finished_runs(user, lab, *seconds: float) -> None:
    now = timezone.now()
    for i, run_s in enumerate(seconds):
        finished = now - timedelta(minutes=10 + i)
        row = attempt(user, lab, "passed", 100, started_at=finished - timedelta(seconds=run_s), finished_at=finished)
        # Picked up half a second after it was created.
        Submission.objects.filter(pk=row.pk).update(created_at=row.started_at - timedelta(seconds=0.5))


def test_only_live_workers_on_the_grading_queue_count(db):
    worker("celery@a", slots=1)
    worker("celery@b", slots=4)
    worker("celery@dead", slots=8, seen_s_ago=120)
    worker("celery@reaper", queues=("maintenance",))
    assert GradingWorker.objects.grading_slots(queue="grading") == 5


def test_the_reaper_forgets_workers_silent_for_a_day(db):
    from grading.tasks import reap_stale_submissions

    worker("celery@a", seen_s_ago=120)
    worker("celery@killed-yesterday", seen_s_ago=25 * 3600)
    reap_stale_submissions()
    assert list(GradingWorker.objects.values_list("name", flat=True)) == ["celery@a"]


def test_the_estimate_counts_the_workers(learner, other_learner, tiny_lab):
    finished_runs(other_learner, tiny_lab, 4.0, 4.0, 4.0)
    worker("celery@a")
    first = attempt(other_learner, tiny_lab, "queued", None)
    second = attempt(other_learner, tiny_lab, "queued", None)
    mine = attempt(learner, tiny_lab, "queued", None)
    one = queue_estimate(mine)
    assert (one.position, one.graders, one.typical_s) == (3, 1, 4.0)
    assert one.wait_s == pytest.approx(3 * 4.5)  # run time plus pick-up, three in turn
    worker("celery@b")
    two = queue_estimate(mine)
    assert two.graders == 2 and two.wait_s == pytest.approx(2 * 4.5)
    assert queue_estimate(first).wait_s == pytest.approx(4.5)
    assert second.pk and queue_estimate(Submission.objects.get(pk=first.pk)) is not None


def test_with_no_worker_the_page_says_so_instead_of_guessing(learner_client, learner, other_learner, tiny_lab):
    finished_runs(other_learner, tiny_lab, 4.0)
    mine = attempt(learner, tiny_lab, "queued", None)
    page = learner_client.get(f"/submissions/{mine.pk}/").content.decode()
    assert "Position 1 in the queue; no grader is running right now, so grading starts when one is." in page
    worker("celery@a")
    worker("celery@b")
    page = learner_client.get(f"/submissions/{mine.pk}/").content.decode()
    assert "Position 1 in the queue; about 5 s until your verdict (2 graders at work;" in page


def test_a_long_wait_is_told_in_minutes(learner_client, learner, other_learner, tiny_lab):
    finished_runs(other_learner, tiny_lab, 299.5)
    worker("celery@a")
    for _ in range(2):
        attempt(other_learner, tiny_lab, "queued", None)
    mine = attempt(learner, tiny_lab, "queued", None)
    page = learner_client.get(f"/submissions/{mine.pk}/").content.decode()
    assert "Position 3 in the queue; about 15 min until your verdict (1 grader at work;" in page


def running(user, lab, **progress) -> Submission:
    row = attempt(user, lab, "running", None, stage_count=3, started_at=timezone.now())
    Submission.objects.filter(pk=row.pk).update(heartbeat_at=timezone.now(), **progress)
    return row


def poll(client, submission):
    return client.get(f"/submissions/{submission.pk}/status/", HTTP_HX_REQUEST="true")


def test_a_claimed_run_before_its_first_stage_is_preparing_never_stage_0(learner_client, learner, tiny_lab):
    row = running(learner, tiny_lab)
    html = poll(learner_client, row).content.decode()
    assert "Preparing the sandbox" in html and "stage 0" not in html
    assert 'value="0"' in html


def test_a_running_stage_shows_its_number_name_time_and_moves_the_bar(learner_client, learner, tiny_lab):
    row = running(
        learner,
        tiny_lab,
        stage_index=2,
        current_stage="train",
        stage_started_at=timezone.now() - timedelta(seconds=12),
        stage_limit_s=300,
    )
    html = poll(learner_client, row).content.decode()
    assert re.search(r"stage 2 of 3: <strong>train</strong> \(1[23] s of 300 s\)", html), html
    assert re.search(r'<progress [^>]*value="50"', html)
    assert 'hx-trigger="every 1s"' in html
    assert "grading-announcement" not in html  # nothing to tell yet


def test_the_verdict_is_swapped_in_and_announced_once_by_the_poll_only(learner_client, learner, tiny_lab):
    row = attempt(learner, tiny_lab, "failed", 40)
    response = poll(learner_client, row)
    html = response.content.decode()
    assert "HX-Refresh" not in response.headers  # no full reload
    assert "hx-get" not in html  # polling stops
    assert '<span hx-swap-oob="innerHTML:#grading-announcement">Grading finished: Failed, 40 of 100 points.' in html
    page = learner_client.get(f"/submissions/{row.pk}/").content.decode()
    assert re.search(r'<p id="grading-announcement"[^>]*aria-live="polite"[^>]*></p>', page)
    assert "hx-swap-oob" not in page  # a page load announces nothing
    assert page.count("aria-live") == 1  # the polled part is not a live region


def test_failing_checks_come_first(learner_client, learner, tiny_lab):
    row = attempt(learner, tiny_lab, "failed", 20)
    for order, (name, status, score) in enumerate(
        [("loads", "passed", 10), ("accurate", "failed", 0), ("honest", "skipped", 0), ("exits", "error", 0)]
    ):
        CheckResult.objects.create(
            submission=row, order=order, name=name, status=status, score=score, max_score=10, required=False
        )
    page = learner_client.get(f"/submissions/{row.pk}/").content.decode()
    rows = re.findall(r"<tr>\s*<td>(\w+)", page)
    assert rows == ["accurate", "exits", "honest", "loads"]
