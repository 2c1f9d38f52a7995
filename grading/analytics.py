"""The numbers behind the instructor's analytics pages (a selector module: these reads
join submissions, check results, enrollments, quizzes and certificates).

Plain functions over a few `values()` queries, computed in Python: a lab has at most
a few thousand graded attempts, and one pass over them yields every statistic. The
pages draw them with grading/charts.py.

Definitions (the page says them too):
- A learner's *attempts* are their graded submissions of the lab (passed or failed:
  a platform error or a refused upload is no attempt), oldest first, up to and
  including their first pass. Attempt numbers from `ATTEMPT_BUCKETS` on are pooled.
- A check *fails* on an attempt when its result is failed or error.
- A check *flips* on a snapshot when the same snapshot (content hash), graded more
  than once by the same grader version (lab content hash), by a resubmission or a
  regrade, got both a passing and a non-passing verdict for that check.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.utils import timezone

from courses.models import CourseStaff, Enrollment, Module, QuizAttempt
from labs.models import Lab

from . import hooks
from .models import CheckResult, ResultHistory, Submission

ATTEMPT_BUCKETS = 8  # attempts 8, 9, ... are shown together as "8+"
SCORE_BINS = 10
DAYS = 30
# Time from a learner's first attempt to their first pass.
TIME_TO_PASS_BUCKETS: list[tuple[str, float]] = [
    ("< 1 h", 3600),
    ("1–6 h", 6 * 3600),
    ("6–24 h", 24 * 3600),
    ("1–3 days", 3 * 86400),
    ("3–7 days", 7 * 86400),
    ("≥ 7 days", float("inf")),
]
_FAILING = {CheckResult.Status.FAILED, CheckResult.Status.ERROR}
_GRADED = [Submission.Status.PASSED, Submission.Status.FAILED]


def attempt_label(number: int) -> str:
    return f"{ATTEMPT_BUCKETS}+" if number >= ATTEMPT_BUCKETS else str(number)


@dataclass
class AttemptRate:
    label: str
    attempts: int = 0
    passed: int = 0

    @property
    def rate(self) -> float:
        return self.passed / self.attempts if self.attempts else 0.0


@dataclass
class CheckStats:
    name: str
    results: int = 0
    fails: int = 0
    fails_first: int = 0
    # attempt label -> [results, fails]
    by_attempt: dict[str, list[int]] = field(default_factory=dict)
    snapshots_regraded: int = 0
    snapshots_flipped: int = 0

    @property
    def fail_rate(self) -> float:
        return self.fails / self.results if self.results else 0.0

    @property
    def flip_rate(self) -> float | None:
        return self.snapshots_flipped / self.snapshots_regraded if self.snapshots_regraded else None

    def fail_share(self, label: str) -> float | None:
        results, fails = self.by_attempt.get(label, (0, 0))
        return fails / results if results else None


@dataclass
class DayTimes:
    day: date
    submissions: int
    median_wait_s: float | None
    median_run_s: float | None


@dataclass
class LabAnalytics:
    lab: Lab
    learners: int
    learners_passed: int
    attempts: int
    pass_rate_by_attempt: list[AttemptRate]
    score_bins: list[tuple[str, int]]
    checks: list[CheckStats]
    attempt_labels: list[str]
    time_to_pass: list[tuple[str, int]]
    median_time_to_pass_s: float | None
    days: list[DayTimes]


def _staff_ids(course) -> set[int]:
    return set(CourseStaff.objects.filter(course=course).values_list("user_id", flat=True))


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def lab_analytics(lab: Lab, *, now: datetime | None = None) -> LabAnalytics:
    """Every per-lab statistic, from the learners' graded submissions (course staff's
    own test runs left out). Reads only."""
    staff = _staff_ids(lab.course)
    rows: list[dict[str, Any]] = [
        dict(row)
        for row in Submission.objects.filter(lab=lab, status__in=_GRADED, score__isnull=False)
        .exclude(user_id__in=staff)
        .order_by("created_at")
        .values("pk", "user_id", "status", "score", "max_score", "created_at", "snapshot_sha256", "lab_hash")
    ]
    by_learner: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_learner[row["user_id"]].append(row)

    # Attempt numbers (up to the first pass) and pass rate per attempt number.
    attempt_of: dict = {}
    rates = {attempt_label(n): AttemptRate(attempt_label(n)) for n in range(1, ATTEMPT_BUCKETS + 1)}
    durations: list[float] = []
    best_percent: list[float] = []
    for subs in by_learner.values():
        for number, row in enumerate(subs, start=1):
            label = attempt_label(number)
            attempt_of[row["pk"]] = label
            rates[label].attempts += 1
            if row["status"] == Submission.Status.PASSED:
                rates[label].passed += 1
                durations.append((row["created_at"] - subs[0]["created_at"]).total_seconds())
                break
        percents = [100.0 * (r["score"] or 0) / r["max_score"] for r in subs if r["max_score"]]
        best_percent.append(max(percents, default=0.0))
    while len(rates) > 1 and not rates[list(rates)[-1]].attempts:
        rates.pop(list(rates)[-1])
    labels = list(rates)

    bins = [0] * SCORE_BINS
    for percent in best_percent:
        bins[min(int(percent // (100 / SCORE_BINS)), SCORE_BINS - 1)] += 1
    width = 100 // SCORE_BINS
    score_bins = [(f"{i * width}–{i * width + width}%", count) for i, count in enumerate(bins)]

    time_buckets: Counter[str] = Counter()
    for seconds in durations:
        time_buckets[next(name for name, limit in TIME_TO_PASS_BUCKETS if seconds < limit)] += 1

    checks = _check_stats(lab, rows, attempt_of)
    return LabAnalytics(
        lab=lab,
        learners=len(by_learner),
        learners_passed=len(durations),
        attempts=len(rows),
        pass_rate_by_attempt=list(rates.values()),
        score_bins=score_bins,
        checks=checks,
        attempt_labels=labels,
        time_to_pass=[(name, time_buckets[name]) for name, _ in TIME_TO_PASS_BUCKETS],
        median_time_to_pass_s=_median(durations),
        days=_days(lab, staff, now=now or timezone.now()),
    )


def _check_stats(lab: Lab, rows: list[dict[str, Any]], attempt_of: dict) -> list[CheckStats]:
    """Per check: how often it fails, on which attempt, how often it is the first
    failing check of an attempt, and its flip rate on unchanged snapshots."""
    order = [check.get("name", "") for check in lab.spec.get("checks", [])]
    stats: dict[str, CheckStats] = {name: CheckStats(name) for name in order}
    snapshot_of = {row["pk"]: (row["snapshot_sha256"], row["lab_hash"]) for row in rows}
    first_fail: dict = {}
    verdicts: dict[tuple[str, tuple[str, str]], set[bool]] = defaultdict(set)
    gradings: dict[tuple[str, tuple[str, str]], int] = Counter()
    results = CheckResult.objects.filter(submission_id__in=list(snapshot_of)).values_list(
        "submission_id", "name", "status", "order"
    )
    for submission_id, name, status, position in results.iterator(chunk_size=2000):
        check = stats.setdefault(name, CheckStats(name))
        failing = status in _FAILING
        label = attempt_of.get(submission_id)
        if label is not None:
            check.results += 1
            check.fails += failing
            cell = check.by_attempt.setdefault(label, [0, 0])
            cell[0] += 1
            cell[1] += failing
            if failing and (submission_id not in first_fail or position < first_fail[submission_id][0]):
                first_fail[submission_id] = (position, name)
        snapshot = snapshot_of[submission_id]
        if snapshot[0] and status != CheckResult.Status.SKIPPED:
            verdicts[(name, snapshot)].add(status == CheckResult.Status.PASSED)
            gradings[(name, snapshot)] += 1
    # The verdicts a regrade replaced (ResultHistory) are gradings of the same snapshot
    # too, under the lab version they were graded by.
    history = ResultHistory.objects.filter(submission_id__in=list(snapshot_of)).values_list(
        "submission_id", "previous_checks", "previous_lab_hash"
    )
    for submission_id, previous_checks, previous_lab_hash in history.iterator(chunk_size=500):
        sha = snapshot_of[submission_id][0]
        if not sha or not previous_lab_hash:
            continue
        for entry in previous_checks or []:
            name, status = entry.get("name"), entry.get("status")
            if not name or status in (None, CheckResult.Status.SKIPPED):
                continue
            stats.setdefault(name, CheckStats(name))
            verdicts[(name, (sha, previous_lab_hash))].add(status == CheckResult.Status.PASSED)
            gradings[(name, (sha, previous_lab_hash))] += 1
    for _, name in first_fail.values():
        stats[name].fails_first += 1
    for key, count in gradings.items():
        if count > 1:
            stats[key[0]].snapshots_regraded += 1
            stats[key[0]].snapshots_flipped += len(verdicts[key]) > 1
    return list(stats.values())


def _days(lab: Lab, staff: set[int], *, now: datetime) -> list[DayTimes]:
    """Median queue wait (submitted → a worker claimed it) and run time (claimed →
    finished) per day over the last `DAYS` days. Regrades are left out: their
    claim is timed from the regrade, not from when the learner submitted."""
    today = timezone.localdate(now)
    start = today - timedelta(days=DAYS - 1)
    rows = (
        Submission.objects.filter(lab=lab, started_at__isnull=False)
        .learner_submitted()
        .exclude(user_id__in=staff)
        .filter(created_at__date__gte=start)
        .values_list("created_at", "started_at", "finished_at")
    )
    waits: dict[date, list[float]] = defaultdict(list)
    runs: dict[date, list[float]] = defaultdict(list)
    for created, started, finished in rows.iterator():
        if started is None:  # filtered out above; for the type checker
            continue
        day = timezone.localdate(created)
        waits[day].append(max(0.0, (started - created).total_seconds()))
        if finished is not None:
            runs[day].append(max(0.0, (finished - started).total_seconds()))
    return [
        DayTimes(
            day=day, submissions=len(waits[day]), median_wait_s=_median(waits[day]), median_run_s=_median(runs[day])
        )
        for day in (start + timedelta(days=i) for i in range(DAYS))
    ]


@dataclass
class FunnelStep:
    label: str
    learners: int
    kind: str  # "enrolled", "quiz", "lab", "certified"


def course_funnel(course) -> list[FunnelStep]:
    """Enrolled learners → each module's knowledge check passed → each lab passed →
    certified (a current certificate that is not revoked, via grading.hooks). Every
    step counts enrolled learners only, so a step never exceeds the first."""
    enrolled = set(Enrollment.objects.filter(course=course).values_list("user_id", flat=True)) - _staff_ids(course)
    steps = [FunnelStep("Enrolled", len(enrolled), "enrolled")]
    modules = Module.objects.filter(course=course, published=True, quiz_pass_mark__isnull=False).order_by("order")
    quiz_passed: dict[int, set[int]] = defaultdict(set)
    for module_id, user_id in QuizAttempt.objects.filter(module__in=modules, passed=True).values_list(
        "module_id", "user_id"
    ):
        quiz_passed[module_id].add(user_id)
    for module in modules:
        steps.append(FunnelStep(f"Quiz passed: {module.title}", len(quiz_passed[module.pk] & enrolled), "quiz"))
    labs = Lab.objects.filter(course=course, published=True).order_by("order")
    lab_passed: dict[int, set[int]] = defaultdict(set)
    for lab_id, user_id in Submission.objects.filter(lab__in=labs).passed().values_list("lab_id", "user_id").distinct():
        lab_passed[lab_id].add(user_id)
    for lab in labs:
        steps.append(FunnelStep(f"Lab passed: {lab.title}", len(lab_passed[lab.pk] & enrolled), "lab"))
    certified: set = set()
    for provider in hooks.course_certified_user_ids:
        certified |= provider(course)
    steps.append(FunnelStep("Certified", len(certified & enrolled), "certified"))
    return steps
