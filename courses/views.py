from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from . import services
from .access import Action, can, course_for_staff, course_role, require_enrollment
from .forms import CourseStaffForm
from .models import Course, CourseStaff, Enrollment, Lesson, Module, QuizAttempt
from .progress import course_progress
from .quiz import choice_id, choice_index, choice_order


def _course_for(request: HttpRequest, slug: str) -> Course:
    """The course if this user may see it: published, or one they are staff of."""
    return get_object_or_404(Course.objects.visible_to(request.user), slug=slug)


def _module_for(request: HttpRequest, course: Course, slug: str) -> Module:
    modules = course.modules.all() if can(request.user, course, Action.PREVIEW) else course.modules.published()
    return get_object_or_404(modules, slug=slug)


def catalog(request: HttpRequest) -> HttpResponse:
    courses = Course.objects.visible_to(request.user).prefetch_related("modules", "labs").order_by("order", "title")
    cards = []
    for course in courses:
        preview = can(request.user, course, Action.PREVIEW)
        modules = [m for m in course.modules.all() if m.published or preview]
        labs = [lab for lab in course.labs.all() if lab.published or preview]
        cards.append({"course": course, "modules": modules, "labs": labs})
    return render(request, "courses/catalog.html", {"cards": cards})


def course_detail(request: HttpRequest, slug: str) -> HttpResponse:
    course = _course_for(request, slug)
    role = course_role(request.user, course)
    preview = can(request.user, course, Action.PREVIEW)
    modules = list(course.modules.all() if preview else course.modules.published())
    enrollment = None
    progress = None
    if request.user.is_authenticated:
        enrollment = Enrollment.objects.filter(user=request.user, course=course).first()
        if enrollment:
            progress = course_progress(user=request.user, course=course)
    # Through the reverse relation: labs sit above courses, which never imports them.
    labs = course.labs.visible_to(request.user)  # type: ignore[attr-defined]
    return render(
        request,
        "courses/course_detail.html",
        {
            "course": course,
            "modules": modules,
            "enrollment": enrollment,
            "progress": progress,
            "labs": labs,
            "role": role,
            "role_label": CourseStaff.Role(role).label if role else "",
            "preview": preview,
            "can_manage_staff": can(request.user, course, Action.MANAGE_STAFF),
            "can_export_grades": can(request.user, course, Action.EXPORT_GRADES),
            "can_view_submissions": can(request.user, course, Action.VIEW_SUBMISSIONS),
        },
    )


@login_required
@require_POST
def course_enroll(request: HttpRequest, slug: str) -> HttpResponse:
    course = _course_for(request, slug)
    services.enrollment_create(user=request.user, course=course)
    messages.success(request, f"You are enrolled in {course.title}.")
    first = (
        Lesson.objects.published()
        .filter(module__course=course, module__published=True)
        .order_by("module__order", "order")
        .first()
    )
    return redirect(first.get_absolute_url() if first else course.get_absolute_url())


def module_detail(request: HttpRequest, slug: str, module_slug: str) -> HttpResponse:
    course = _course_for(request, slug)
    module = _module_for(request, course, module_slug)
    lessons = module.lessons.all() if can(request.user, course, Action.PREVIEW) else module.lessons.published()
    labs = module.labs.visible_to(request.user)  # type: ignore[attr-defined]
    progress = None
    if request.user.is_authenticated and Enrollment.objects.filter(user=request.user, course=course).exists():
        progress = next(
            (m for m in course_progress(user=request.user, course=course).modules if m.module.pk == module.pk),
            None,
        )
    return render(
        request,
        "courses/module_detail.html",
        {"course": course, "module": module, "lessons": lessons, "labs": labs, "progress": progress},
    )


def lesson_detail(request: HttpRequest, slug: str, module_slug: str, lesson_slug: str) -> HttpResponse:
    course = _course_for(request, slug)
    module = _module_for(request, course, module_slug)
    lessons = list(module.lessons.all() if can(request.user, course, Action.PREVIEW) else module.lessons.published())
    lesson = next((item for item in lessons if item.slug == lesson_slug), None)
    if lesson is None:
        raise Http404("No such lesson")
    if (response := require_enrollment(request, course)) is not None:
        return response
    if request.method == "POST":
        services.lesson_mark_read(user=request.user, lesson=lesson)
        return redirect(_next_after(course, module, lesson, lessons))
    services.enrollment_touch(user=request.user, course=course, url=lesson.get_absolute_url(), title=lesson.title)
    index = lessons.index(lesson)
    is_read = lesson.progress.filter(user=request.user).exists()
    return render(
        request,
        "courses/lesson_detail.html",
        {
            "course": course,
            "module": module,
            "lesson": lesson,
            "lessons": lessons,
            "previous": lessons[index - 1] if index > 0 else None,
            "next": lessons[index + 1] if index + 1 < len(lessons) else None,
            "is_read": is_read,
        },
    )


def _next_after(course: Course, module: Module, lesson: Lesson, lessons: list[Lesson]) -> str:
    from django.urls import reverse

    index = lessons.index(lesson)
    if index + 1 < len(lessons):
        return lessons[index + 1].get_absolute_url()
    if module.has_quiz:
        return reverse("courses:quiz", args=[course.slug, module.slug])
    return module.get_absolute_url()


QUIZ_INCOMPLETE = "Answer every question before submitting."


def _quiz_for(request: HttpRequest, slug: str, module_slug: str) -> tuple[Course, Module]:
    course = _course_for(request, slug)
    module = _module_for(request, course, module_slug)
    if not module.has_quiz:
        raise Http404("This module has no knowledge check")
    return course, module


def _posted_attempt_number(raw: str, next_number: int) -> int:
    """The attempt the posted form was shown for: the next one, or an earlier one
    from a page left open; anything else is taken as the next one."""
    # isascii: str.isdigit() also accepts digits such as "²" that int() refuses.
    if raw.isascii() and raw.isdigit() and len(raw) <= 9 and 1 <= int(raw) <= next_number:
        return int(raw)
    return next_number


def quiz(request: HttpRequest, slug: str, module_slug: str) -> HttpResponse:
    course, module = _quiz_for(request, slug, module_slug)
    if (response := require_enrollment(request, course)) is not None:
        return response
    questions = list(module.questions.filter(published=True))
    number = QuizAttempt.objects.next_number(user=request.user, module=module)
    chosen: dict[str, int] = {}
    missing: list[str] = []
    if request.method == "POST":
        number = _posted_attempt_number(request.POST.get("attempt", ""), number)
        for question in questions:
            # The form posts choice ids, so grading never depends on the shown order.
            index = choice_index(question, request.POST.get(f"q-{question.key}", ""))
            if index is None:
                missing.append(question.key)
            else:
                chosen[question.key] = index
        if not missing:
            attempt = services.quiz_attempt_create(user=request.user, module=module, answers=chosen, number=number)
            return redirect("courses:quiz-attempt", course.slug, module.slug, attempt.pk)
        messages.error(request, QUIZ_INCOMPLETE)
    else:
        services.enrollment_touch(
            user=request.user,
            course=course,
            url=request.path,
            title=f"Knowledge check: {module.title}",
        )
    attempts = module.quiz_attempts.filter(user=request.user)
    rows = [
        {
            "question": question,
            "choices": [
                {
                    "id": choice_id(question, index),
                    "html": question.choices_html[index],
                    "checked": chosen.get(question.key) == index,
                }
                for index in choice_order(question, user_pk=request.user.pk, attempt_number=number)
            ],
            "missing": question.key in missing,
        }
        for question in questions
    ]
    return render(
        request,
        "courses/quiz.html",
        {
            "course": course,
            "module": module,
            "rows": rows,
            "number": number,
            "best": attempts.order_by("-correct", "-created_at").first(),
            "latest": attempts.order_by("-created_at").first(),
        },
        status=400 if missing else 200,
    )


def quiz_attempt(request: HttpRequest, slug: str, module_slug: str, attempt_id: int) -> HttpResponse:
    """One attempt's result: which answers were wrong and why.

    A failed attempt never shows the right choice of a question answered wrongly, so
    the next attempt is answered from understanding rather than from memory; a passed
    attempt does.
    """
    course, module = _quiz_for(request, slug, module_slug)
    if (response := require_enrollment(request, course)) is not None:
        return response
    attempt = get_object_or_404(QuizAttempt, pk=attempt_id, user=request.user, module=module)
    rows = []
    for question in module.questions.filter(published=True):
        if question.key not in attempt.answers:
            continue  # added to the check after this attempt
        chosen = attempt.answers[question.key]
        choices = [
            {
                "html": question.choices_html[index],
                "chosen": index == chosen,
                "answer": attempt.passed and index == question.answer,
            }
            for index in choice_order(question, user_pk=request.user.pk, attempt_number=attempt.number)
        ]
        rows.append({"question": question, "choices": choices, "right": chosen == question.answer})
    return render(
        request,
        "courses/quiz_attempt.html",
        {
            "course": course,
            "module": module,
            "attempt": attempt,
            "rows": rows,
            "wrong": [(number, row) for number, row in enumerate(rows, start=1) if not row["right"]],
        },
    )


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    enrollments = Enrollment.objects.filter(user=request.user).select_related("course").order_by("-last_activity_at")
    rows = []
    for enrollment in enrollments:
        if not (enrollment.course.published or can(request.user, enrollment.course, Action.PREVIEW)):
            continue
        rows.append(
            {
                "enrollment": enrollment,
                "progress": course_progress(user=request.user, course=enrollment.course, enrollment=enrollment),
            }
        )
    # Certificates come from certificates' `dashboard_certificates` template tag.
    return render(request, "courses/dashboard.html", {"rows": rows})


@login_required
def course_staff(request: HttpRequest, slug: str) -> HttpResponse:
    """The course's staff page: its instructors add staff by e-mail with a role,
    change a role, or remove someone. 404 for everyone else."""
    course = course_for_staff(request, slug, Action.MANAGE_STAFF)
    form = CourseStaffForm()
    if request.method == "POST":
        try:
            if "remove" in request.POST:
                services.course_staff_remove(course=course, staff_pk=int(request.POST["remove"]))
                messages.success(request, "Removed from the course's staff.")
                return redirect("courses:course-staff", slug=course.slug)
            form = CourseStaffForm(request.POST)
            if form.is_valid():
                staff = services.course_staff_set(course=course, **form.cleaned_data)
                messages.success(
                    request, f"{staff.user.email} is now {staff.get_role_display().lower()} of this course."
                )
                return redirect("courses:course-staff", slug=course.slug)
        except services.StaffChangeRefused as exc:
            messages.error(request, exc.message)
        except ValueError:
            raise Http404("No such staff member") from None
    staff = CourseStaff.objects.filter(course=course).select_related("user")
    return render(
        request,
        "courses/course_staff.html",
        {"course": course, "staff": staff, "form": form, "roles": CourseStaff.Role.choices},
        status=400 if form.errors else 200,
    )
