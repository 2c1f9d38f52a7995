"""Regrade previews: start one, watch it and read its diff, apply it with a policy.

Instructors and teaching assistants may preview (nothing live changes); only
instructors apply; auditors do neither (courses/access.py). Anyone else gets 404.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from courses.access import Action, can, course_for_staff
from labs.models import Lab

from . import regrades
from .models import RegradeBatch

APPLIED = "Applied with “{policy}”: {applied} result(s) changed, {kept} kept, {skipped} skipped."
STARTED = "Preview started: {count} submission(s) are being graded on the low-priority queue. Nothing live changes until you apply it."


def _batch_for(request: HttpRequest, pk: int, action: Action) -> RegradeBatch:
    if not request.user.is_authenticated:
        raise Http404
    batch = get_object_or_404(RegradeBatch.objects.select_related("lab", "lab__course", "created_by"), pk=pk)
    if not can(request.user, batch.lab.course, action):
        raise Http404
    return batch


@login_required
@require_http_methods(["GET", "POST"])
def regrade_previews(request: HttpRequest, course_slug: str, lab_slug: str) -> HttpResponse:
    """The lab's previews, and the form that starts one (scope, or chosen submissions)."""
    course = course_for_staff(request, course_slug, Action.REGRADE_PREVIEW)
    lab = get_object_or_404(Lab.objects.select_related("course"), course=course, slug=lab_slug)
    if request.method == "POST":
        try:
            batch = regrades.regrade_preview_start(
                lab=lab,
                user=request.user,
                scope=request.POST.get("scope", ""),
                submission_ids=request.POST.getlist("submission"),
            )
        except regrades.RegradeRefused as exc:
            messages.error(request, exc.message)
            return redirect("grading:regrade-previews", course_slug=course.slug, lab_slug=lab.slug)
        messages.success(request, STARTED.format(count=batch.items.count()))
        return redirect(batch.get_absolute_url())
    return render(
        request,
        "grading/regrade_previews.html",
        {
            "lab": lab,
            "batches": lab.regrade_batches.select_related("created_by", "applied_by")[:50],
            "submissions": regrades.regradable_submissions(lab).select_related("user").order_by("-created_at")[:500],
            "scopes": RegradeBatch.Scope.choices,
        },
    )


def _batch_context(request: HttpRequest, batch: RegradeBatch) -> dict:
    diff = regrades.regrade_batch_diff(batch)
    return {
        "batch": batch,
        "lab": batch.lab,
        "diff": diff,
        "can_apply": can(request.user, batch.lab.course, Action.REGRADE_APPLY),
        "policies": RegradeBatch.Policy.choices,
        "lab_changed": batch.lab.content_hash != batch.lab_hash,
    }


@login_required
def regrade_batch(request: HttpRequest, pk: int) -> HttpResponse:
    batch = _batch_for(request, pk, Action.REGRADE_PREVIEW)
    return render(request, "grading/regrade_batch.html", _batch_context(request, batch))


@login_required
def regrade_batch_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The live part of the preview page, polled by htmx until every item is done."""
    batch = _batch_for(request, pk, Action.REGRADE_PREVIEW)
    return render(request, "grading/_regrade_diff.html", _batch_context(request, batch))


@login_required
@require_POST
def regrade_batch_apply(request: HttpRequest, pk: int) -> HttpResponse:
    batch = _batch_for(request, pk, Action.REGRADE_APPLY)
    policy = request.POST.get("policy", "")
    try:
        report = regrades.regrade_batch_apply(batch=batch, policy=policy, user=request.user)
    except regrades.RegradeRefused as exc:
        messages.error(request, exc.message)
    else:
        label = dict(RegradeBatch.Policy.choices)[policy].split(":")[0]
        messages.success(
            request, APPLIED.format(policy=label, applied=report.applied, kept=report.kept, skipped=report.skipped)
        )
    return redirect(batch.get_absolute_url())
