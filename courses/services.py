"""Writes that touch learners' course state."""

from __future__ import annotations

from django.db import transaction

from .models import Course, Enrollment, Lesson, LessonProgress, Module, QuizAttempt


def enrollment_create(*, user, course: Course) -> Enrollment:
    """Enroll `user` in `course`; idempotent (a second call returns the same row)."""
    enrollment, _ = Enrollment.objects.get_or_create(user=user, course=course)
    return enrollment


def enrollment_touch(*, user, course: Course, url: str, title: str) -> None:
    """Remember the page a learner last opened, for "continue where you left off"."""
    Enrollment.objects.filter(user=user, course=course).update(last_url=url[:300], last_title=title[:200])
    # update() skips auto_now; keep the dashboard ordering right.
    from django.utils import timezone

    Enrollment.objects.filter(user=user, course=course).update(last_activity_at=timezone.now())


def lesson_mark_read(*, user, lesson: Lesson) -> None:
    """Record that `user` has read `lesson`; idempotent."""
    LessonProgress.objects.get_or_create(user=user, lesson=lesson)


@transaction.atomic
def quiz_attempt_create(*, user, module: Module, answers: dict[str, int], number: int | None = None) -> QuizAttempt:
    """Grade a knowledge-check attempt and store it. Unanswered questions count wrong.

    `answers` maps question keys to the author's index of the chosen choice (never a
    position in the shuffled form). `number` is the attempt the form was shown for,
    which fixes the order its result shows the choices in; by default the next one.
    Each call stores a new attempt.
    """
    questions = list(module.questions.filter(published=True))
    correct = sum(1 for question in questions if answers.get(question.key) == question.answer)
    total = len(questions)
    pass_mark = module.quiz_pass_mark if module.quiz_pass_mark is not None else 75.0
    passed = total > 0 and 100.0 * correct / total >= pass_mark
    if number is None:
        number = QuizAttempt.objects.next_number(user=user, module=module)
    return QuizAttempt.objects.create(
        user=user, module=module, answers=answers, number=number, correct=correct, total=total, passed=passed
    )
