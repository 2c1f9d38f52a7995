"""Progress reads: what a learner has done in a course, per module."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .models import Course, Lesson, LessonProgress, Module, QuizAttempt


@dataclass
class ModuleProgress:
    module: Module
    lessons_total: int
    lessons_read: int
    quiz: bool
    quiz_passed: bool
    labs: list[tuple[Any, bool]] = field(default_factory=list)

    @property
    def done(self) -> int:
        return self.lessons_read + int(self.quiz_passed) + sum(1 for _, passed in self.labs if passed)

    @property
    def total(self) -> int:
        return self.lessons_total + int(self.quiz) + len(self.labs)

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.total) if self.total else 0


@dataclass
class CourseProgress:
    course: Course
    modules: list[ModuleProgress]
    next_url: str | None
    next_title: str | None
    # The learner met the course's requirements (earned its certificate).
    complete: bool = False

    @property
    def done(self) -> int:
        return sum(module.done for module in self.modules)

    @property
    def total(self) -> int:
        return sum(module.total for module in self.modules)

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.total) if self.total else 0

    @property
    def labs_passed(self) -> int:
        return sum(1 for module in self.modules for _, passed in module.labs if passed)

    @property
    def labs_total(self) -> int:
        return sum(len(module.labs) for module in self.modules)


# Labs and their passing live above courses (labs, grading): the app that knows
# whether a learner passed a lab registers, in its AppConfig.ready(), a function
# (user, course) -> [(published lab, passed), ...]; a lab needs `module_id`,
# `title` and `get_absolute_url()`.
lab_progress: list[Callable[..., list[tuple[Any, bool]]]] = []
# Whether a learner completed a course is known above courses too (certificates:
# the certificate is earned); each provider answers (user, course) -> bool.
course_completion: list[Callable[..., bool]] = []


def course_progress(*, user, course: Course) -> CourseProgress:
    modules = list(course.modules.published().prefetch_related("lessons"))
    lessons = Lesson.objects.published().filter(module__in=modules)
    read = set(LessonProgress.objects.filter(user=user, lesson__in=lessons).values_list("lesson_id", flat=True))
    quiz_passed = set(
        QuizAttempt.objects.filter(user=user, module__in=modules, passed=True).values_list("module_id", flat=True)
    )
    labs = [item for provider in lab_progress for item in provider(user=user, course=course)]
    result: list[ModuleProgress] = []
    next_url = next_title = None
    for module in modules:
        module_lessons = [lesson for lesson in module.lessons.all() if lesson.published]
        module_labs = [(lab, passed) for lab, passed in labs if lab.module_id == module.pk]
        progress = ModuleProgress(
            module=module,
            lessons_total=len(module_lessons),
            lessons_read=sum(1 for lesson in module_lessons if lesson.pk in read),
            quiz=module.has_quiz,
            quiz_passed=module.pk in quiz_passed,
            labs=module_labs,
        )
        result.append(progress)
        if next_url is None:
            for lesson in module_lessons:
                if lesson.pk not in read:
                    next_url, next_title = lesson.get_absolute_url(), lesson.title
                    break
        if next_url is None and progress.quiz and not progress.quiz_passed:
            from django.urls import reverse

            next_url = reverse("courses:quiz", args=[course.slug, module.slug])
            next_title = f"Knowledge check: {module.title}"
        if next_url is None:
            for lab, passed in progress.labs:
                if not passed:
                    next_url, next_title = lab.get_absolute_url(), f"Lab: {lab.title}"
                    break
    complete = any(provider(user=user, course=course) for provider in course_completion)
    return CourseProgress(course=course, modules=result, next_url=next_url, next_title=next_title, complete=complete)
