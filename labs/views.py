from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from courses.access import Action, can, require_enrollment
from courses.models import Course
from courses.services import enrollment_touch

from .models import Lab


def _lab_for(request: HttpRequest, course_slug: str, lab_slug: str) -> Lab:
    """The lab if this user may see it (published in a published course, or staff)."""
    course = get_object_or_404(Course.objects.visible_to(request.user), slug=course_slug)
    return get_object_or_404(
        Lab.objects.visible_to(request.user).select_related("course", "module"),
        course=course,
        slug=lab_slug,
    )


def lab_detail(request: HttpRequest, course_slug: str, lab_slug: str) -> HttpResponse:
    lab = _lab_for(request, course_slug, lab_slug)
    if (response := require_enrollment(request, lab.course)) is not None:
        return response
    enrollment_touch(user=request.user, course=lab.course, url=request.path, title=f"Lab: {lab.title}")
    context: dict = {
        "lab": lab,
        "course": lab.course,
        "checks": lab.spec.get("checks", []),
        "can_view_submissions": can(request.user, lab.course, Action.VIEW_SUBMISSIONS),
    }
    # The submit form and attempts come from grading's template tag (lab_detail.html).
    return render(request, "labs/lab_detail.html", context)


def starter_download(request: HttpRequest, course_slug: str, lab_slug: str) -> HttpResponse:
    lab = _lab_for(request, course_slug, lab_slug)
    if (response := require_enrollment(request, lab.course)) is not None:
        return response
    response = HttpResponse(bytes(lab.starter_zip), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{lab.slug}-starter.zip"'
    return response
