"""Who may study a course: shared by courses' pages and the lab pages (labs/views.py),
so the rule and its message live in one public place."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from .models import Course, Enrollment

NOT_ENROLLED = "Enroll in the course to open its lessons, knowledge checks and labs."


def require_enrollment(request: HttpRequest, course: Course) -> HttpResponse | None:
    """None when the user may study the course; otherwise where to send them."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if request.user.is_staff or Enrollment.objects.filter(user=request.user, course=course).exists():
        return None
    messages.info(request, NOT_ENROLLED)
    return redirect(course.get_absolute_url())
