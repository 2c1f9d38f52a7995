from __future__ import annotations

import csv

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.html import format_html
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_POST

from config.client import client_ip
from courses.access import Action, can, course_for_staff
from courses.models import Course
from labs.models import Lab

from . import feedback, services
from .forms import SubmissionForm
from .gradebook import GradebookQueryError, course_gradebook, gradebook_filters
from .models import CheckResult, ExecutedNotebook, Submission
from .queue_estimate import queue_estimate
from .uploads import UPLOAD_TOO_LARGE, CappedUploadHandler

ACTIVE_LINK = "See the submission being graded."
REGRADE_QUEUED = "Queued for regrading on the low-priority queue."
REGRADE_REFUSED = (
    "Not queued: only a finished submission whose source is still kept can be regraded "
    "(this one is being graded now, or its source was removed by the retention policy)."
)
REGRADE_ALL_QUEUED = (
    "Regrading {count} finished submission(s) in the background on the low-priority queue; "
    "learners can keep submitting meanwhile."
)


# OWASP "CSV injection": a spreadsheet runs a cell that starts with one of these as a
# formula (tab and carriage return too, which some strip before looking).
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: str) -> str:
    """`value` made inert for a spreadsheet: a leading quote makes a would-be formula text."""
    return f"'{value}" if value.startswith(_FORMULA_PREFIXES) else value


def _lab_for(request: HttpRequest, course_slug: str, lab_slug: str) -> Lab:
    """The lab if this user may see it (published in a published course, or staff); else 404."""
    course = get_object_or_404(Course.objects.visible_to(request.user), slug=course_slug)
    return get_object_or_404(
        Lab.objects.visible_to(request.user).select_related("course", "module"), course=course, slug=lab_slug
    )


def _submission_for_user(request: HttpRequest, pk, action: Action = Action.VIEW_SUBMISSIONS) -> Submission:
    """The submission if it is the user's own, or the user may do `action` on its
    course; else 404 (never 403: a submission's existence is not given away)."""
    if not request.user.is_authenticated:
        raise Http404
    submission = get_object_or_404(Submission.objects.select_related("lab", "lab__course", "user"), pk=pk)
    mine = submission.user_id == request.user.pk and action == Action.VIEW_SUBMISSIONS
    if not (mine or can(request.user, submission.lab.course, action)):
        raise Http404
    return submission


def _lab_for_staff(request: HttpRequest, course_slug: str, lab_slug: str, action: Action) -> Lab:
    """A lab of a course the user may do `action` on (published or not); else 404."""
    course = course_for_staff(request, course_slug, action)
    return get_object_or_404(Lab.objects.select_related("course"), course=course, slug=lab_slug)


def lab_submission_context(request: HttpRequest, lab: Lab) -> dict:
    """The submit form and attempt history shown on a lab page."""
    attempts = list(Submission.objects.for_user(request.user).filter(lab=lab).order_by("-created_at")[:50])
    best = Submission.objects.for_user(request.user).best_for_lab(lab)
    form = SubmissionForm(lab=lab)
    timeline = feedback.attempts_timeline(attempts)
    context = {"lab": lab, "form": form, "attempts": attempts, "best": best, "timeline": timeline}
    return {
        "submit_form_html": render_to_string("grading/_submit_form.html", context, request=request),
        "attempts_html": render_to_string("grading/_attempts.html", context, request=request),
    }


@csrf_exempt
@login_required
@require_POST
def submission_create(request: HttpRequest, course_slug: str, lab_slug: str) -> HttpResponse:
    # The capped handler must be installed before anything reads the body, so CSRF
    # is checked by the inner view (Django's documented pattern).
    request.upload_handlers.insert(0, CappedUploadHandler(request, cap=settings.SHIPWRIGHT_UPLOAD_MAX_BYTES))
    return _submission_create(request, course_slug, lab_slug)


@csrf_protect
def _submission_create(request: HttpRequest, course_slug: str, lab_slug: str) -> HttpResponse:
    lab = _lab_for(request, course_slug, lab_slug)
    files = request.FILES  # parses the body, through the capped handler
    if getattr(request, "upload_too_large", False):
        messages.error(request, UPLOAD_TOO_LARGE.format(mb=settings.SHIPWRIGHT_UPLOAD_MAX_BYTES / 1024 / 1024))
        return redirect(lab.get_absolute_url())
    form = SubmissionForm(request.POST, files, lab=lab)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, str(error))
        return redirect(lab.get_absolute_url())
    try:
        # Stored as received; the intake queue unpacks or clones it, never this request.
        submission = services.submission_receive(
            user=request.user,
            lab=lab,
            upload=form.cleaned_data.get("archive"),
            git_url=form.cleaned_data.get("git_url") or "",
            git_ref=form.cleaned_data.get("git_ref") or "",
            client_ip=client_ip(request),
        )
    except services.SubmissionThrottled as exc:
        if exc.active is None:
            messages.error(request, exc.message)
        else:
            link = format_html('{} <a href="{}">{}</a>', exc.message, exc.active.get_absolute_url(), ACTIVE_LINK)
            messages.error(request, link)
        return redirect(lab.get_absolute_url())
    except services.SubmissionRejected as exc:
        messages.error(request, exc.message)
        return redirect(lab.get_absolute_url())
    return redirect(submission.get_absolute_url())


def _queue_context(submission: Submission) -> dict:
    """Position in the queue and how long until the verdict (grading/queue_estimate.py)."""
    estimate = queue_estimate(submission)
    if estimate is None:
        return {}
    return {
        "queue_position": estimate.position,
        "estimate_s": estimate.wait_s,
        "typical_s": estimate.typical_s,
        "graders": estimate.graders,
    }


# Failing checks first: they are what the learner came to read; each group keeps the
# lab's order.
_CHECK_GROUP: dict[str, int] = {
    CheckResult.Status.FAILED: 0,
    CheckResult.Status.ERROR: 0,
    CheckResult.Status.SKIPPED: 1,
}


def _grading_percent(submission: Submission) -> int:
    """The progress bar of a running submission: finished stages, and half of the one
    running (its time limit says nothing of how long it will really take)."""
    if not submission.stage_count or not submission.stage_index:
        return 0
    index = min(submission.stage_index, submission.stage_count)
    return round(100 * (index - 0.5) / submission.stage_count)


def _detail_context(request: HttpRequest, submission: Submission) -> dict:
    stages = list(submission.stage_runs.all())
    checks = sorted(submission.check_results.all(), key=lambda check: (_CHECK_GROUP.get(check.status, 2), check.order))
    notebook = None
    if submission.finished:
        notebook = ExecutedNotebook.objects.filter(submission=submission).first()
        feedback.annotate_checks(submission, checks, notebook)
    elapsed = None
    if submission.status == Submission.Status.RUNNING and submission.stage_started_at:
        elapsed = max(0.0, (timezone.now() - submission.stage_started_at).total_seconds())
    return {
        "submission": submission,
        "lab": submission.lab,
        "stages": stages,
        "checks": checks,
        "stage_elapsed_s": elapsed,
        "grading_percent": _grading_percent(submission),
        # Course staff see the platform's error detail, who submitted, and grader output.
        "is_staff": can(request.user, submission.lab.course, Action.VIEW_SUBMISSIONS),
        "can_regrade": can(request.user, submission.lab.course, Action.REGRADE),
        "grader_note": "The output of this grader-owned stage is not shown, because it could reveal hidden tests.",
        "notebook": notebook,
        **_queue_context(submission),
    }


def submission_detail(request: HttpRequest, pk) -> HttpResponse:
    submission = _submission_for_user(request, pk)
    return render(request, "grading/submission_detail.html", _detail_context(request, submission))


def submission_notebook_download(request: HttpRequest, pk) -> HttpResponse:
    """The executed notebook, hidden cells stripped: its learner and course staff only."""
    submission = _submission_for_user(request, pk)
    notebook = ExecutedNotebook.objects.filter(submission=submission).exclude(ipynb="").first()
    if notebook is None:
        raise Http404
    response = HttpResponse(notebook.ipynb, content_type="application/x-ipynb+json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{submission.lab.slug}-executed.ipynb"'
    response["X-Content-Type-Options"] = "nosniff"
    return response


def submission_status(request: HttpRequest, pk) -> HttpResponse:
    """The live part of the submission page, polled by htmx every second. Once the
    submission is finished the answer carries no polling trigger, so htmx swaps the
    verdict in and stops; the page's live region is told the verdict once (an
    out-of-band swap: only a poll's answer carries it, never a page load)."""
    submission = _submission_for_user(request, pk)
    context = _detail_context(request, submission)
    context["announce"] = submission.finished and request.headers.get("HX-Request") == "true"
    return render(request, "grading/_submission_status.html", context)


@login_required
def lab_submissions(request: HttpRequest, course_slug: str, lab_slug: str) -> HttpResponse:
    lab = _lab_for_staff(request, course_slug, lab_slug, Action.VIEW_SUBMISSIONS)
    submissions = Submission.objects.filter(lab=lab).select_related("user").order_by("-created_at")
    status = request.GET.get("status", "")
    learner = request.GET.get("learner", "").strip()
    if status in Submission.Status.values:
        submissions = submissions.filter(status=status)
    if learner:
        submissions = submissions.filter(Q(user__email__icontains=learner) | Q(user__display_name__icontains=learner))
    return render(
        request,
        "grading/lab_submissions.html",
        {
            "lab": lab,
            "submissions": submissions[:500],
            "status": status,
            "learner": learner,
            "statuses": Submission.Status.choices,
            "can_regrade": can(request.user, lab.course, Action.REGRADE),
            "can_preview_regrade": can(request.user, lab.course, Action.REGRADE_PREVIEW),
            "can_export_grades": can(request.user, lab.course, Action.EXPORT_GRADES),
        },
    )


@login_required
@require_POST
def submission_regrade(request: HttpRequest, pk) -> HttpResponse:
    submission = _submission_for_user(request, pk, Action.REGRADE)
    if services.submission_regrade(submission=submission):
        messages.success(request, REGRADE_QUEUED)
    else:
        messages.error(request, REGRADE_REFUSED)
    return redirect(submission.get_absolute_url())


@login_required
@require_POST
def lab_regrade_all(request: HttpRequest, course_slug: str, lab_slug: str) -> HttpResponse:
    """Hands the whole lab to one background task on the low queue: regrading
    hundreds of submissions in the request would time out and hold locks that
    learners' own submissions wait for."""
    from .tasks import regrade_lab

    lab = _lab_for_staff(request, course_slug, lab_slug, Action.REGRADE)
    count = Submission.objects.filter(lab=lab).regradable().count()
    if count:
        queue = settings.SHIPWRIGHT_LOW_QUEUE
        transaction.on_commit(lambda: regrade_lab.apply_async(args=[lab.pk], queue=queue))
    messages.success(request, REGRADE_ALL_QUEUED.format(count=count))
    return redirect("grading:lab-submissions", course_slug=course_slug, lab_slug=lab_slug)


@login_required
def course_grades_csv(request: HttpRequest, course_slug: str) -> HttpResponse:
    """One row per enrolled learner: the best score of each lab. Takes the
    gradebook's filters and sort (grading/gradebook_views.py); by e-mail without."""
    course = course_for_staff(request, course_slug, Action.EXPORT_GRADES)
    try:
        book = course_gradebook(course, **gradebook_filters(request.GET, default_sort="email"))
    except GradebookQueryError as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain; charset=utf-8")
    response = HttpResponse(content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{course.slug}-grades.csv"'
    writer = csv.writer(response)
    writer.writerow(
        [
            csv_cell(cell)
            for cell in ["email", "display_name", *[f"{lab.slug} (best %)" for lab in book.labs], "labs_passed"]
        ]
    )
    for row in book.rows:
        cells = [f"{cell.best_percent:.1f}" if cell.best_percent is not None else "" for cell in row.cells]
        writer.writerow([csv_cell(row.email), csv_cell(row.name), *cells, row.labs_passed])
    return response
