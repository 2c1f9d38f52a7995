"""Course-wide reads for the instructor's cockpit: the gradebook and the at-risk list.

A selector module (house style 3) because these reads join learners, enrollments,
labs, submissions, check results and quiz attempts. Each is a handful of aggregate
queries whatever the cohort's size (one GROUP BY over the course's submissions for
the whole gradebook), never a query per learner or per cell: the gradebook of 2,000
learners by 8 labs is measured by `bench/gradebook_page.py`. Filtering by text runs
in the database; filtering by a lab's status and sorting run over the computed rows
(a few thousand tuples), so every column sorts the same way.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db.models import Count, F, Max, OuterRef, Q, Subquery, Value
from django.db.models.functions import NullIf
from django.utils import timezone

from courses.models import Course, Enrollment, LessonProgress, QuizAttempt
from labs.models import Lab

from .models import CheckResult, Submission


class CellStatus(enum.StrEnum):
    """A learner's standing on one lab. Each has a symbol and a word besides its
    colour, so the table reads without colour too."""

    PASSED = "passed"
    FAILED = "failed"
    IN_PROGRESS = "in_progress"
    NOT_ATTEMPTED = "not_attempted"

    @property
    def label(self) -> str:
        return _LABELS[self]

    @property
    def symbol(self) -> str:
        return _SYMBOLS[self]


_LABELS = {
    CellStatus.PASSED: "passed",
    CellStatus.FAILED: "failed",
    CellStatus.IN_PROGRESS: "in progress",
    CellStatus.NOT_ATTEMPTED: "not attempted",
}
_SYMBOLS = {
    CellStatus.PASSED: "✓",
    CellStatus.FAILED: "✗",
    CellStatus.IN_PROGRESS: "…",
    CellStatus.NOT_ATTEMPTED: "–",
}

# Sort keys besides a lab's slug (which sorts by that lab's best score).
SORT_NAME, SORT_EMAIL, SORT_PASSED, SORT_ACTIVITY = "name", "email", "passed", "activity"
SORT_FIXED = (SORT_NAME, SORT_EMAIL, SORT_PASSED, SORT_ACTIVITY)

BAD_SORT = "Unknown sort column {value!r}: use name, email, passed, activity or a lab's slug."
BAD_LAB = "Unknown lab {value!r} in the status filter: use one of this course's labs."
BAD_STATUS = "Unknown status {value!r}: use passed, failed, in_progress, not_attempted or not_passed."
# "not passed" is the filter instructors reach for most ("who has not passed serve-model?").
NOT_PASSED = "not_passed"


class GradebookQueryError(ValueError):
    """A query parameter names no column, lab or status; the message says which."""


@dataclass(frozen=True)
class Cell:
    status: CellStatus
    attempts: int = 0
    best_percent: float | None = None

    def as_json(self) -> dict:
        return {
            "status": self.status.value,
            "best_percent": None if self.best_percent is None else round(self.best_percent, 1),
            "attempts": self.attempts,
        }


_EMPTY = Cell(CellStatus.NOT_ATTEMPTED)


@dataclass(frozen=True)
class Row:
    user_id: int
    email: str
    name: str
    cells: list[Cell]
    last_activity: datetime | None

    @property
    def labs_passed(self) -> int:
        return sum(cell.status == CellStatus.PASSED for cell in self.cells)


@dataclass(frozen=True)
class Gradebook:
    course: Course
    labs: list[Lab]
    rows: list[Row]
    # How many enrolled learners there are before filtering.
    enrolled: int
    counts: dict[str, dict[CellStatus, int]] = field(default_factory=dict)


def public_name(email: str, display_name: str) -> str:
    """User.public_name from the two columns, without loading the user."""
    return (display_name or "").strip() or email.split("@", 1)[0]


def cells_by_learner(
    labs: list[Lab], user_ids: Iterable[int] | None = None
) -> tuple[dict[int, list[Cell]], dict[int, datetime]]:
    """Each learner's cell for each of `labs` (one GROUP BY learner and lab), and
    their latest submission's time (one GROUP BY learner).

    Attempts count every submission that got past intake (a regrade reruns the same
    row, so it is not a new attempt). The best percentage follows the "best attempt"
    rule of SubmissionQuerySet.best_first: the best passing attempt if any passed,
    else the best graded one. Status: passed if any attempt passed; else in progress
    while one is received, queued or running; else failed if one was graded; else
    not attempted (only rejected sources or platform errors)."""
    graded = Q(status__in=[Submission.Status.PASSED, Submission.Status.FAILED], score__isnull=False)
    percent = F("score") * Value(100.0) / NullIf(F("max_score"), Value(0.0))
    submissions = Submission.objects.filter(lab__in=labs)
    if user_ids is not None:
        submissions = submissions.filter(user_id__in=user_ids)
    groups = (
        submissions.values("user_id", "lab_id")
        .annotate(
            attempts=Count("pk", filter=~Q(status=Submission.Status.REJECTED)),
            passed=Count("pk", filter=Q(status=Submission.Status.PASSED)),
            active=Count("pk", filter=Q(status__in=Submission.ACTIVE)),
            graded=Count("pk", filter=graded),
            best_passed=Max(percent, filter=Q(status=Submission.Status.PASSED, score__isnull=False)),
            best_graded=Max(percent, filter=graded),
        )
        .order_by()
        .values_list("user_id", "lab_id", "attempts", "passed", "active", "graded", "best_passed", "best_graded")
    )
    column = {lab.pk: index for index, lab in enumerate(labs)}
    cells: dict[int, list[Cell]] = {}
    for user_id, lab_id, attempts, passed, active, graded_, best_passed, best_graded in groups:
        if passed:
            status = CellStatus.PASSED
        elif active:
            status = CellStatus.IN_PROGRESS
        elif graded_:
            status = CellStatus.FAILED
        else:
            status = CellStatus.NOT_ATTEMPTED
        row = cells.get(user_id)
        if row is None:
            row = cells[user_id] = [_EMPTY] * len(labs)
        row[column[lab_id]] = Cell(status, attempts, best_passed if best_passed is not None else best_graded)
    # Per learner, not per cell: a datetime per row is most of the cost of reading rows.
    latest = dict(
        submissions.values("user_id").annotate(last=Max("created_at")).order_by().values_list("user_id", "last")
    )
    return cells, latest


def _last_activity(course: Course, submitted: dict[int, datetime]) -> dict[int, datetime]:
    """Each enrolled learner's latest sign of progress: a submission (`submitted`,
    from cells_by_learner), a knowledge check attempt, a lesson read, or enrolling.
    One grouped query per kind."""
    latest: dict[int, datetime] = dict(submitted)

    def merge(rows):
        for user_id, when in rows:
            if when is not None and (user_id not in latest or when > latest[user_id]):
                latest[user_id] = when

    merge(Enrollment.objects.filter(course=course).values_list("user_id", "created_at"))
    merge(
        QuizAttempt.objects.filter(module__course=course)
        .values("user_id")
        .annotate(last=Max("created_at"))
        .order_by()
        .values_list("user_id", "last")
    )
    merge(
        LessonProgress.objects.filter(lesson__module__course=course)
        .values("user_id")
        .annotate(last=Max("completed_at"))
        .order_by()
        .values_list("user_id", "last")
    )
    return latest


def gradebook_labs(course: Course) -> list[Lab]:
    """The gradebook's columns: the course's published labs, in course order (the
    grades CSV's columns)."""
    return list(
        Lab.objects.filter(course=course, published=True)
        .order_by("order")
        .only("pk", "course_id", "slug", "title", "order")
    )


def gradebook_filters(params, *, default_sort: str = SORT_NAME) -> dict:
    """course_gradebook's keyword arguments from a query string (`q`, `lab`, `status`,
    `sort`, `dir=desc`): the gradebook page, its JSON and the grades CSV read the same."""
    return {
        "text": params.get("q", "").strip()[:200],
        "lab": params.get("lab", "").strip(),
        "status": params.get("status", "").strip(),
        "sort": params.get("sort", "").strip() or default_sort,
        "descending": params.get("dir") == "desc",
    }


def _parse_status(value: str) -> str:
    if value == NOT_PASSED or value in CellStatus._value2member_map_:
        return value
    raise GradebookQueryError(BAD_STATUS.format(value=value))


def course_gradebook(
    course: Course,
    *,
    text: str = "",
    lab: str = "",
    status: str = "",
    sort: str = SORT_NAME,
    descending: bool = False,
) -> Gradebook:
    """Enrolled learners by the course's published labs.

    `text` keeps learners whose e-mail or name contains it (case-insensitive); `lab`
    and `status` keep those whose cell for that lab has that status (`not_passed`:
    any but passed). `sort` is name, email, passed (labs passed), activity (last
    activity) or a lab's slug (its best percentage, not attempted last); ties break
    by e-mail. Raises GradebookQueryError naming a bad column, lab or status."""
    labs = gradebook_labs(course)
    slugs = [lab_.slug for lab_ in labs]
    if sort not in SORT_FIXED and sort not in slugs:
        raise GradebookQueryError(BAD_SORT.format(value=sort))
    if status:
        _parse_status(status)
    if lab and lab not in slugs:
        raise GradebookQueryError(BAD_LAB.format(value=lab))

    enrollments = Enrollment.objects.filter(course=course)
    enrolled = enrollments.count()
    if text:
        enrollments = enrollments.filter(Q(user__email__icontains=text) | Q(user__display_name__icontains=text))
    learners = list(enrollments.values_list("user_id", "user__email", "user__display_name"))
    cells, submitted = cells_by_learner(labs)
    activity = _last_activity(course, submitted)
    empty = [_EMPTY] * len(labs)
    rows = [
        Row(user_id, email, public_name(email, name), cells.get(user_id, empty), activity.get(user_id))
        for user_id, email, name in learners
    ]
    if lab and status:
        column = slugs.index(lab)
        if status == NOT_PASSED:
            rows = [row for row in rows if row.cells[column].status != CellStatus.PASSED]
        else:
            rows = [row for row in rows if row.cells[column].status == status]

    rows.sort(key=lambda row: row.email.lower())
    if sort == SORT_NAME:
        rows.sort(key=lambda row: row.name.lower(), reverse=descending)
    elif sort == SORT_EMAIL:
        if descending:
            rows.reverse()
    elif sort == SORT_PASSED:
        rows.sort(key=lambda row: row.labs_passed, reverse=descending)
    elif sort == SORT_ACTIVITY:
        rows.sort(key=lambda row: row.last_activity or datetime.min.replace(tzinfo=UTC), reverse=descending)
    else:
        column = slugs.index(sort)
        # Unattempted cells go last in either direction: they have no score to compare.
        scored = [row for row in rows if row.cells[column].best_percent is not None]
        unscored = [row for row in rows if row.cells[column].best_percent is None]
        scored.sort(key=lambda row: row.cells[column].best_percent or 0.0, reverse=descending)
        rows = scored + unscored

    tally = [dict.fromkeys(CellStatus, 0) for _ in labs]
    for row in rows:
        for index, cell in enumerate(row.cells):
            tally[index][cell.status] += 1
    counts = {lab_.slug: tally[index] for index, lab_ in enumerate(labs)}
    return Gradebook(course=course, labs=labs, rows=rows, enrolled=enrolled, counts=counts)


@dataclass(frozen=True)
class AtRisk:
    user_id: int
    email: str
    name: str
    last_activity: datetime | None
    # Why: days without progress (None when it is the failures alone), and the
    # check failed K times or more (with its lab and count), if any.
    idle_days: int | None
    repeated_check: str = ""
    repeated_lab: str = ""
    repeated_failures: int = 0
    last_failed_check: str = ""
    last_failed_lab: str = ""
    last_failed_at: datetime | None = None


def course_at_risk(course: Course, *, days: int = 7, failures: int = 3, now: datetime | None = None) -> list[AtRisk]:
    """Enrolled learners who stalled: no progress (see `_last_activity`) for `days`
    days or more, or `failures` or more failed attempts at the same check of a lab
    they have not passed since. Learners who passed every published lab are not at
    risk. Each comes with their last failing check and when; the longest idle first.
    A fixed number of queries: the gradebook's cells, one per other kind of
    activity, one for repeated failures and two for the last failing check of each."""
    now = now or timezone.now()
    labs = gradebook_labs(course)
    lab_slugs = {lab.pk: lab.slug for lab in labs}
    cells, submitted = cells_by_learner(labs)
    activity = _last_activity(course, submitted)
    passed_labs = {
        user_id: {lab.pk for lab, cell in zip(labs, row, strict=True) if cell.status == CellStatus.PASSED}
        for user_id, row in cells.items()
    }

    repeated: dict[int, tuple[str, int, int]] = {}
    rows = (
        CheckResult.objects.filter(submission__lab__in=labs, status=CheckResult.Status.FAILED)
        .values("submission__user_id", "submission__lab_id", "name")
        .annotate(n=Count("pk"))
        .filter(n__gte=failures)
        .order_by()
    )
    for row in rows:
        user_id, lab_id = row["submission__user_id"], row["submission__lab_id"]
        if lab_id in passed_labs.get(user_id, set()):
            continue
        if user_id not in repeated or row["n"] > repeated[user_id][2]:
            repeated[user_id] = (row["name"], lab_id, row["n"])

    cutoff = now - timedelta(days=days)
    every_lab = set(lab_slugs)
    learners = Enrollment.objects.filter(course=course).values_list("user_id", "user__email", "user__display_name")
    candidates = []
    for user_id, email, name in learners:
        if every_lab and passed_labs.get(user_id, set()) >= every_lab:
            continue
        last = activity.get(user_id)
        idle = last is not None and last <= cutoff
        if idle or user_id in repeated:
            candidates.append((user_id, email, public_name(email, name), last, idle))

    last_failed = _last_failed_checks([c[0] for c in candidates], labs)
    result = []
    for user_id, email, name, last, idle in candidates:
        check, lab_id, count = repeated.get(user_id, ("", 0, 0))
        failed = last_failed.get(user_id)
        result.append(
            AtRisk(
                user_id=user_id,
                email=email,
                name=name,
                last_activity=last,
                idle_days=(now - last).days if idle and last else None,
                repeated_check=check,
                repeated_lab=lab_slugs.get(lab_id, "") if lab_id else "",
                repeated_failures=count,
                last_failed_check=failed[0] if failed else "",
                last_failed_lab=lab_slugs.get(failed[1], "") if failed else "",
                last_failed_at=failed[2] if failed else None,
            )
        )
    epoch = datetime.min.replace(tzinfo=UTC)
    result.sort(key=lambda r: (r.last_activity or epoch, r.email))
    return result


def _last_failed_checks(user_ids: list[int], labs: list[Lab]) -> dict[int, tuple[str, int, datetime]]:
    """(check name, lab pk, submitted at) of each learner's most recent failed check:
    two queries, the first picking each learner's newest failed check row by a
    correlated subquery."""
    if not user_ids or not labs:
        return {}
    newest = (
        CheckResult.objects.filter(
            submission__user_id=OuterRef("user_id"), submission__lab__in=labs, status=CheckResult.Status.FAILED
        )
        .order_by("-submission__created_at", "order")
        .values("pk")[:1]
    )
    picked = (
        Enrollment.objects.filter(course=labs[0].course_id, user_id__in=user_ids)
        .annotate(check_pk=Subquery(newest))
        .exclude(check_pk=None)
        .values_list("check_pk", flat=True)
    )
    rows = CheckResult.objects.filter(pk__in=list(picked)).values_list(
        "submission__user_id", "name", "submission__lab_id", "submission__created_at"
    )
    return {user_id: (name, lab_id, when) for user_id, name, lab_id, when in rows}
