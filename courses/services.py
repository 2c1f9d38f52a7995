"""Writes that touch learners' course state and a course's staff."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction

from .models import Course, CourseStaff, Enrollment, Lesson, LessonProgress, Module, QuizAttempt


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


class StaffChangeRefused(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


NO_SUCH_ACCOUNT = "No account uses {email}: ask them to sign up first, then add them."
LAST_INSTRUCTOR = "A course keeps at least one instructor: add another instructor before removing this one."


@transaction.atomic
def course_staff_set(*, course: Course, email: str, role: str) -> CourseStaff:
    """Give the account with `email` `role` on `course` (replacing any role it had).
    Idempotent. Refused when no account has that address, or when it would leave the
    course without an instructor."""
    user = get_user_model().objects.filter(email__iexact=email.strip()).first()
    if user is None:
        raise StaffChangeRefused(NO_SUCH_ACCOUNT.format(email=email.strip()))
    current = CourseStaff.objects.select_for_update().filter(course=course, user=user).first()
    if current and current.role == CourseStaff.Role.INSTRUCTOR and role != CourseStaff.Role.INSTRUCTOR:
        _keep_an_instructor(course=course, leaving=current)
    staff, _ = CourseStaff.objects.update_or_create(course=course, user=user, defaults={"role": role})
    return staff


@transaction.atomic
def course_staff_remove(*, course: Course, staff_pk: int) -> None:
    """Remove one member of the course's staff; idempotent; refused for the last instructor."""
    staff = CourseStaff.objects.select_for_update().filter(course=course, pk=staff_pk).first()
    if staff is None:
        return
    if staff.role == CourseStaff.Role.INSTRUCTOR:
        _keep_an_instructor(course=course, leaving=staff)
    staff.delete()


def _keep_an_instructor(*, course: Course, leaving: CourseStaff) -> None:
    # Locks the course's instructor rows, so two instructors removing each other at
    # once cannot both succeed.
    others = (
        CourseStaff.objects.select_for_update()
        .filter(course=course, role=CourseStaff.Role.INSTRUCTOR)
        .exclude(pk=leaving.pk)
    )
    if not list(others):
        raise StaffChangeRefused(LAST_INSTRUCTOR)


def demo_instructor_grant(user) -> str:
    """Makes the demo instructor an instructor of every course (the sample course
    after `make run`'s import); idempotent. Development only (create_demo_users)."""
    courses = list(Course.objects.all())
    for course in courses:
        CourseStaff.objects.update_or_create(course=course, user=user, defaults={"role": CourseStaff.Role.INSTRUCTOR})
    if not courses:
        return "No course yet: import content, then run create_demo_users again to make the instructor teach it."
    return f"{user.email} is an instructor of: {', '.join(course.slug for course in courses)}"
