"""Where a learner is in a course: one rule for "percent complete" and one for
"continue", used by the dashboard, the course page and the module page alike.

A course is a list of steps, module by module: each published lesson (done once
read), the module's knowledge check (done once passed), then each published lab
(done once passed). Every step counts the same: percent complete = steps done /
steps, for a module and for the course. "Continue" is the first step not done at or
after the step the learner was last on (Enrollment.last_url), else the first step
not done from the start; none when every step is done (the course is complete).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.urls import reverse

from .models import Course, Enrollment, Lesson, LessonProgress, Module, QuizAttempt


@dataclass(frozen=True)
class Step:
    kind: str  # "lesson", "quiz" or "lab"
    title: str  # what "Continue: ..." says
    url: str
    done: bool


def _percent(done: int, total: int) -> int:
    return round(100 * done / total) if total else 0


@dataclass
class ModuleProgress:
    module: Module
    steps: list[Step]
    lessons_total: int
    lessons_read: int
    read_lesson_ids: set[int]
    quiz: bool
    quiz_passed: bool
    labs: list[tuple[Any, bool]] = field(default_factory=list)

    @property
    def done(self) -> int:
        return sum(step.done for step in self.steps)

    @property
    def total(self) -> int:
        return len(self.steps)

    @property
    def percent(self) -> int:
        return _percent(self.done, self.total)


@dataclass
class CourseProgress:
    course: Course
    modules: list[ModuleProgress]
    next_step: Step | None
    # The learner met the course's requirements (the apps above say so through
    # `course_completion`: certificates, when the certificate is earned or owed).
    requirements_met: bool = False

    @property
    def steps(self) -> list[Step]:
        return [step for module in self.modules for step in module.steps]

    @property
    def done(self) -> int:
        return sum(module.done for module in self.modules)

    @property
    def total(self) -> int:
        return sum(module.total for module in self.modules)

    @property
    def percent(self) -> int:
        return _percent(self.done, self.total)

    @property
    def complete(self) -> bool:
        """The course is complete: its requirements are met (every required lab
        passed), or every lesson is read and every knowledge check and lab passed."""
        return self.requirements_met or (self.total > 0 and self.done == self.total)

    @property
    def next_url(self) -> str | None:
        return self.next_step.url if self.next_step else None

    @property
    def next_title(self) -> str | None:
        return self.next_step.title if self.next_step else None

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


def continue_step(steps: list[Step], *, last_url: str = "") -> Step | None:
    """The next thing to do: the first step not done at or after the one at
    `last_url`, else the first step not done; None when all are done."""
    start = next((i for i, step in enumerate(steps) if last_url and step.url == last_url), 0)
    for step in steps[start:] + steps[:start]:
        if not step.done:
            return step
    return None


def course_progress(*, user, course: Course, enrollment: Enrollment | None = None) -> CourseProgress:
    modules = list(course.modules.published().prefetch_related("lessons"))
    lessons = Lesson.objects.published().filter(module__in=modules)
    read = set(LessonProgress.objects.filter(user=user, lesson__in=lessons).values_list("lesson_id", flat=True))
    quiz_passed = set(
        QuizAttempt.objects.filter(user=user, module__in=modules, passed=True).values_list("module_id", flat=True)
    )
    labs = [item for provider in lab_progress for item in provider(user=user, course=course)]
    result: list[ModuleProgress] = []
    for module in modules:
        module_lessons = [lesson for lesson in module.lessons.all() if lesson.published]
        module_labs = [(lab, passed) for lab, passed in labs if lab.module_id == module.pk]
        steps = [
            Step("lesson", lesson.title, lesson.get_absolute_url(), lesson.pk in read) for lesson in module_lessons
        ]
        if module.has_quiz:
            url = reverse("courses:quiz", args=[course.slug, module.slug])
            steps.append(Step("quiz", f"Knowledge check: {module.title}", url, module.pk in quiz_passed))
        steps += [Step("lab", f"Lab: {lab.title}", lab.get_absolute_url(), passed) for lab, passed in module_labs]
        read_here = {lesson.pk for lesson in module_lessons if lesson.pk in read}
        result.append(
            ModuleProgress(
                module=module,
                steps=steps,
                lessons_total=len(module_lessons),
                lessons_read=len(read_here),
                read_lesson_ids=read_here,
                quiz=module.has_quiz,
                quiz_passed=module.pk in quiz_passed,
                labs=module_labs,
            )
        )
    if enrollment is None:
        enrollment = Enrollment.objects.filter(user=user, course=course).first()
    last_url = enrollment.last_url if enrollment else ""
    steps = [step for module in result for step in module.steps]
    met = any(provider(user=user, course=course) for provider in course_completion)
    return CourseProgress(
        course=course, modules=result, next_step=continue_step(steps, last_url=last_url), requirements_met=met
    )
