"""What the submission page adds to each check's verdict: the lesson that teaches it,
the hints a learner has earned by this attempt, and the notebook cell it points at;
and the lab page's timeline of attempts (score, and which checks flipped).

Read-only: computed from the lab's current spec and the stored results when a page
is shown, so a lab that gains a hint or a lesson link shows it on old results too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from courses.markdown import render
from courses.models import Lesson

from . import notebook_view
from .models import CheckResult, ExecutedNotebook, Submission

GRADED = (Submission.Status.PASSED, Submission.Status.FAILED)
FAILING = (CheckResult.Status.FAILED, CheckResult.Status.ERROR)


def attempt_number(submission: Submission) -> int:
    """Which graded attempt of its learner at its lab this is (1 for the first)."""
    earlier = Submission.objects.filter(
        user_id=submission.user_id, lab_id=submission.lab_id, status__in=GRADED, created_at__lt=submission.created_at
    ).count()
    return earlier + 1


def hints_for_attempt(check_spec, attempt: int) -> list[str]:
    """The `hints:` a failing check shows on a learner's attempt N, beside its general
    `hint`: the first N, each more specific than the one before (attempt 1 shows the
    first, attempt 2 adds the second, and so on until they run out)."""
    return [text for text in check_spec.hints[: max(attempt, 0)] if text]


def _lesson_links(lab, refs: set[str]) -> dict[str, tuple[str, str]]:
    """`MODULE/LESSON#SECTION` -> (url, lesson title), for lessons that exist."""
    links: dict[str, tuple[str, str]] = {}
    for ref in refs:
        path, _, section = ref.partition("#")
        module, _, slug = path.partition("/")
        lesson = (
            Lesson.objects.filter(module__course=lab.course, module__slug=module, slug=slug)
            .select_related("module__course")
            .first()
        )
        if lesson is not None:
            links[ref] = (lesson.get_absolute_url() + (f"#{section}" if section else ""), lesson.title)
    return links


def annotate_checks(submission: Submission, checks: list[CheckResult], notebook: ExecutedNotebook | None) -> None:
    """Set on each check: `lesson_url`/`lesson_title`, `hints_html` (the hints earned
    by this attempt, for a failing check) and `cell_number` (the notebook cell its
    feedback points at)."""
    try:
        spec = submission.lab.parsed_spec
    except ValueError:  # a lab row without a valid spec (never imported): nothing to add
        spec = None
    specs = {check.name: spec.check(check.name) if spec else None for check in checks}
    links = _lesson_links(submission.lab, {s.lesson for s in specs.values() if s is not None and s.lesson})
    attempt = None
    cells = set()
    if notebook is not None and notebook.html:
        cells = {int(n) for n in notebook_view.rendered_cell_numbers(notebook.html)}
    for check in checks:
        check_spec = specs[check.name]
        lesson_url, lesson_title = links.get(check_spec.lesson or "", ("", "")) if check_spec else ("", "")
        hints_html: list[str] = []
        cell_number = None
        if check.status in FAILING:
            if check_spec is not None:
                if attempt is None:
                    attempt = attempt_number(submission)
                # The general `hint` is the stored hint_html, shown as before.
                hints_html = [render(text) for text in hints_for_attempt(check_spec, attempt)]
            if notebook is not None and cells:
                cell_number = notebook_view.cell_anchor_for(check.output, cells=cells, flagged=notebook.flagged_cell)
        # Display-only attributes for the template, beside the stored fields.
        vars(check).update(
            lesson_url=lesson_url, lesson_title=lesson_title, hints_html=hints_html, cell_number=cell_number
        )


@dataclass
class TimelineEntry:
    submission: Submission
    number: int
    to_passing: list[str] = field(default_factory=list)
    to_failing: list[str] = field(default_factory=list)


def attempts_timeline(attempts: list[Submission]) -> list[TimelineEntry]:
    """Graded attempts oldest first, each with the checks that flipped since the
    previous graded attempt (fail -> pass and pass -> fail)."""
    graded = sorted((s for s in attempts if s.status in GRADED), key=lambda s: s.created_at)
    results: dict = {}
    for row in CheckResult.objects.filter(submission__in=graded).values_list("submission_id", "name", "status"):
        results.setdefault(row[0], {})[row[1]] = row[2] == CheckResult.Status.PASSED
    entries: list[TimelineEntry] = []
    previous: dict[str, bool] | None = None
    for number, submission in enumerate(graded, start=1):
        current = results.get(submission.pk, {})
        entry = TimelineEntry(submission=submission, number=number)
        if previous is not None:
            for name, passed in current.items():
                if name in previous and previous[name] != passed:
                    (entry.to_passing if passed else entry.to_failing).append(name)
        entries.append(entry)
        previous = current
    return entries
