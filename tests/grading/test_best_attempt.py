"""The "best attempt" rule and the queue estimate live on Submission's QuerySet; the lab
page, the grades CSV and the certificate rule all pick the same attempt."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from certificates.services import requirements_met
from grading.models import Submission


def attempt(user, lab, status: str, score: float | None, max_score: float | None = 100.0, **extra) -> Submission:
    return Submission.objects.create(
        user=user,
        lab=lab,
        source_kind="archive",
        snapshot_path="x.tar.gz",
        snapshot_sha256="0" * 64,
        status=status,
        score=score,
        max_score=max_score,
        **extra,
    )


def test_a_pass_beats_a_higher_failing_score(learner, tiny_lab):
    attempt(learner, tiny_lab, "failed", 90)
    passed = attempt(learner, tiny_lab, "passed", 60)
    assert Submission.objects.for_user(learner).best_for_lab(tiny_lab) == passed


def test_the_highest_percentage_wins_even_when_the_lab_s_points_changed(learner, tiny_lab):
    attempt(learner, tiny_lab, "passed", 80, max_score=200)  # 40 %
    better = attempt(learner, tiny_lab, "passed", 50, max_score=50)  # 100 %
    assert Submission.objects.for_user(learner).best_for_lab(tiny_lab) == better


def test_on_a_tie_the_newest_attempt_counts(learner, tiny_lab):
    older = attempt(learner, tiny_lab, "passed", 100)
    newer = attempt(learner, tiny_lab, "passed", 100)
    Submission.objects.filter(pk=older.pk).update(created_at=timezone.now() - timedelta(hours=1))
    assert Submission.objects.for_user(learner).best_for_lab(tiny_lab) == newer


def test_platform_errors_and_waiting_attempts_never_count(learner, tiny_lab):
    attempt(learner, tiny_lab, "error", None)
    attempt(learner, tiny_lab, "queued", None)
    assert Submission.objects.for_user(learner).best_for_lab(tiny_lab) is None
    failed = attempt(learner, tiny_lab, "failed", 10)
    assert Submission.objects.for_user(learner).best_for_lab(tiny_lab) == failed


def test_another_learner_s_better_attempt_is_not_mine(learner, other_learner, tiny_lab):
    mine = attempt(learner, tiny_lab, "failed", 10)
    attempt(other_learner, tiny_lab, "passed", 100)
    assert Submission.objects.for_user(learner).best_for_lab(tiny_lab) == mine


def test_the_lab_page_shows_the_best_attempt_not_the_latest(learner_client, learner, tiny_lab):
    learner_client.post("/courses/tiny-course/enroll/")
    attempt(learner, tiny_lab, "passed", 75)
    attempt(learner, tiny_lab, "failed", 95)
    page = learner_client.get(tiny_lab.get_absolute_url()).content.decode()
    assert "Best attempt: <strong>75 / 100</strong>" in page


def test_the_certificate_rule_takes_the_best_passed_attempt_over_the_mark(learner, tiny_lab):
    course = tiny_lab.course
    course.requirements = [{"lab": tiny_lab.slug, "pass_mark": 70}]
    course.save()
    attempt(learner, tiny_lab, "passed", 60)
    assert requirements_met(user=learner, course=course) is None
    best = attempt(learner, tiny_lab, "passed", 90)
    attempt(learner, tiny_lab, "passed", 80)
    attempt(learner, tiny_lab, "failed", 99)
    assert requirements_met(user=learner, course=course) == [best]


def test_the_queue_position_counts_learners_waiting_before_me_but_not_staff_regrades(learner, other_learner, tiny_lab):
    first = attempt(other_learner, tiny_lab, "running", None)
    attempt(other_learner, tiny_lab, "queued", None, low_priority=True)
    mine = attempt(learner, tiny_lab, "queued", None)
    attempt(other_learner, tiny_lab, "queued", None)  # after me
    assert Submission.objects.ahead_in_queue_of(mine) == 1
    assert Submission.objects.ahead_in_queue_of(first) == 0


def test_the_estimate_uses_the_lab_s_recent_run_times_newest_first(learner, tiny_lab):
    now = timezone.now()
    for minutes_ago, seconds in [(30, 10), (20, 20), (10, 40)]:
        finished = now - timedelta(minutes=minutes_ago)
        attempt(
            learner, tiny_lab, "passed", 100, started_at=finished - timedelta(seconds=seconds), finished_at=finished
        )
    assert Submission.objects.recent_run_seconds(lab=tiny_lab) == [40.0, 20.0, 10.0]
    assert Submission.objects.recent_run_seconds(lab=tiny_lab, sample=2) == [40.0, 20.0]
