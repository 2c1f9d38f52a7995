"""Who may do what on a course: learners study it, its staff teach it.

One module decides both, so every page asks the same question the same way:

- `require_enrollment(request, course)`: may this user study the course (lessons,
  knowledge checks, labs)? Enrolled learners and the course's staff may.
- `course_role(user, course)`: the user's role on the course's teaching team, or None.
- `can(user, course, action)`: may the user do `action` on the course? The matrix
  below is the whole rule (README "Course staff roles").
- `course_for_staff(request, slug, action)`: the course if the user may do `action`
  on it, else 404, so a course's existence does not leak to someone without a role.

A superuser may do everything everywhere (they could grant themselves any role from
the admin anyway). Plain site staff (`is_staff`) may use the admin and nothing more:
teaching a course takes a role on it. LTI (issue 16) maps LMS roles onto these roles.
"""

from __future__ import annotations

import enum

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect

from .models import Course, CourseStaff, Enrollment

NOT_ENROLLED = "Enroll in the course to open its lessons, knowledge checks and labs."

Role = CourseStaff.Role


class Action(enum.StrEnum):
    PREVIEW = "preview"  # see unpublished modules, lessons and labs; study without enrolling
    VIEW_SUBMISSIONS = "view_submissions"  # every learner's submissions, logs and grader output
    REGRADE = "regrade"  # regrade one submission or a whole lab
    REGRADE_PREVIEW = "regrade_preview"  # run the lab's grader into shadow results and read the diff
    REGRADE_APPLY = "regrade_apply"  # make a previewed regrade the live results (instructors only)
    EXPORT_GRADES = "export_grades"  # the grades CSV (e-mail addresses and names: personal data)
    MANAGE_STAFF = "manage_staff"  # add and remove the course's staff


PERMISSIONS: dict[str, frozenset[Action]] = {
    Role.INSTRUCTOR: frozenset(Action),
    Role.TA: frozenset(
        {Action.PREVIEW, Action.VIEW_SUBMISSIONS, Action.REGRADE, Action.REGRADE_PREVIEW, Action.EXPORT_GRADES}
    ),
    # A reviewer (quality assurance, accreditation) reads; changes nothing, takes no personal data away.
    Role.AUDITOR: frozenset({Action.PREVIEW, Action.VIEW_SUBMISSIONS}),
}


def course_role(user, course: Course) -> str | None:
    """The user's role on the course (a `CourseStaff.Role` value), or None for a learner
    or anonymous visitor. A superuser counts as an instructor of every course."""
    if not getattr(user, "is_authenticated", False):
        return None
    if user.is_superuser:
        return Role.INSTRUCTOR
    return CourseStaff.objects.filter(user=user, course=course).values_list("role", flat=True).first()


def can(user, course: Course, action: Action) -> bool:
    role = course_role(user, course)
    return role is not None and action in PERMISSIONS[role]


def course_for_staff(request: HttpRequest, slug: str, action: Action) -> Course:
    """The course if this user may do `action` on it; else 404 (never 403), so an
    unpublished course's existence is not given away."""
    course = get_object_or_404(Course, slug=slug)
    if not can(request.user, course, action):
        raise Http404("No such course")
    return course


def require_enrollment(request: HttpRequest, course: Course) -> HttpResponse | None:
    """None when the user may study the course; otherwise where to send them."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if (
        can(request.user, course, Action.PREVIEW)
        or Enrollment.objects.filter(user=request.user, course=course).exists()
    ):
        return None
    messages.info(request, NOT_ENROLLED)
    return redirect(course.get_absolute_url())
