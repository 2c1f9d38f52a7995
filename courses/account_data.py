"""A learner's course data in the account export (registered in CoursesConfig.ready())."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from .models import Enrollment, LessonProgress, QuizAttempt


def _when(value) -> str | None:
    return value.isoformat() if value else None


def export(user) -> Iterator[tuple[str, Iterable[dict]]]:
    yield (
        "enrollments",
        (
            {"course": e.course.slug, "enrolled_at": _when(e.created_at), "last_page": e.last_url}
            for e in Enrollment.objects.filter(user=user).select_related("course").iterator()
        ),
    )
    yield (
        "lessons_read",
        (
            {
                "lesson": f"{p.lesson.module.course.slug}/{p.lesson.module.slug}/{p.lesson.slug}",
                "at": _when(p.completed_at),
            }
            for p in LessonProgress.objects.filter(user=user).select_related("lesson__module__course").iterator()
        ),
    )
    yield (
        "knowledge_checks",
        (
            {
                "module": f"{a.module.course.slug}/{a.module.slug}",
                "correct": a.correct,
                "total": a.total,
                "passed": a.passed,
                "answers": a.answers,
                "at": _when(a.created_at),
            }
            for a in QuizAttempt.objects.filter(user=user).select_related("module__course").iterator()
        ),
    )
