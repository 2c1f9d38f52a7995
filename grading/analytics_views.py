"""The instructor's analytics pages: per lab (charts of attempts, scores, checks and
grading times), per course (the funnel), and similar submissions per lab.

Course staff only (any role that may view submissions: instructor, TA, auditor);
anyone else gets 404, as on every instructor page (courses/access.py).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from courses.access import Action, course_for_staff
from labs.models import Lab

from . import analytics, charts, similarity
from .models import Submission

BAD_THRESHOLD = "The similarity threshold must be a number from {low:.2f} to 1; showing pairs from {default:.2f}."
MAX_PAIRS_SHOWN = 300


def _lab(request: HttpRequest, course_slug: str, lab_slug: str) -> Lab:
    course = course_for_staff(request, course_slug, Action.VIEW_SUBMISSIONS)
    return get_object_or_404(Lab.objects.select_related("course"), course=course, slug=lab_slug)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _percent(share: float | None) -> int | None:
    return None if share is None else round(100 * share)


def _lab_charts(stats: analytics.LabAnalytics) -> dict:
    rates = stats.pass_rate_by_attempt
    checks = stats.checks
    days = stats.days
    return {
        "pass_rate": charts.bar_chart(
            title="Pass rate by attempt number",
            desc="For each attempt number, the share of learners' attempts with that number that passed.",
            labels=[r.label for r in rates],
            values=[round(100 * r.rate, 1) for r in rates],
            y_max=100,
            unit="%",
            x_title="Attempt number",
            value_labels=[f"{100 * r.rate:.0f}% of {r.attempts}" for r in rates],
            colour=charts.OK,
        ),
        "scores": charts.bar_chart(
            title="Distribution of best scores",
            desc="How many learners' best attempt scored in each band of ten percentage points.",
            labels=[label for label, _ in stats.score_bins],
            values=[count for _, count in stats.score_bins],
            x_title="Best score (% of the lab's points)",
        ),
        "heatmap": charts.heatmap(
            title="Where attempts fail: checks by attempt number",
            desc="Each cell is the share (%) of attempts with that number on which the check failed.",
            rows=[c.name for c in checks],
            columns=stats.attempt_labels,
            values=[[c.fail_share(label) for label in stats.attempt_labels] for c in checks],
            x_title="Attempt number",
        ),
        "fails_first": charts.hbar_chart(
            title="The check that fails first",
            desc="For each check, on how many failed attempts it was the first check (in the lab's order) to fail.",
            labels=[c.name for c in checks],
            values=[c.fails_first for c in checks],
        ),
        "time_to_pass": charts.bar_chart(
            title="Time from first submission to pass",
            desc="How long learners who passed took from their first graded attempt to their first pass.",
            labels=[label for label, _ in stats.time_to_pass],
            values=[count for _, count in stats.time_to_pass],
            x_title="Time to pass",
        ),
        "times": charts.line_chart(
            title=f"Queue wait and run time, last {analytics.DAYS} days",
            desc="Median seconds per day from submission to a worker starting it, and from start to verdict.",
            labels=[d.day.strftime("%d %b") for d in days],
            series=[
                charts.Series("Median queue wait (s)", [d.median_wait_s for d in days]),
                charts.Series("Median run time (s)", [d.median_run_s for d in days]),
            ],
            unit=" s",
            x_title="Day submitted",
        ),
    }


@login_required
def lab_analytics(request: HttpRequest, course_slug: str, lab_slug: str) -> HttpResponse:
    lab = _lab(request, course_slug, lab_slug)
    stats = analytics.lab_analytics(lab)
    return render(
        request,
        "grading/lab_analytics.html",
        {
            "lab": lab,
            "stats": stats,
            "charts": _lab_charts(stats),
            "check_rows": [
                (c, [(label, _percent(c.fail_share(label))) for label in stats.attempt_labels]) for c in stats.checks
            ],
            "median_time_to_pass": _duration(stats.median_time_to_pass_s),
            "days": [d for d in stats.days if d.submissions],
        },
    )


@login_required
def course_analytics(request: HttpRequest, course_slug: str) -> HttpResponse:
    course = course_for_staff(request, course_slug, Action.VIEW_SUBMISSIONS)
    steps = analytics.course_funnel(course)
    enrolled = steps[0].learners
    funnel = charts.hbar_chart(
        title="Course funnel",
        desc="Enrolled learners, then how many of them passed each module's knowledge check, "
        "each lab, and earned the certificate.",
        labels=[s.label for s in steps],
        values=[s.learners for s in steps],
        of=enrolled or None,
    )
    rows = [(s, round(100 * s.learners / enrolled) if enrolled else 0) for s in steps]
    labs = Lab.objects.filter(course=course).order_by("order")
    return render(
        request, "grading/course_analytics.html", {"course": course, "funnel": funnel, "rows": rows, "labs": labs}
    )


def _threshold(request: HttpRequest) -> tuple[float, str]:
    raw = request.GET.get("threshold", "").strip()
    if not raw:
        return similarity.DEFAULT_THRESHOLD, ""
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not similarity.FLOOR <= value <= 1.0:
        message = BAD_THRESHOLD.format(low=similarity.FLOOR, default=similarity.DEFAULT_THRESHOLD)
        return similarity.DEFAULT_THRESHOLD, message
    return value, ""


@login_required
def lab_similarity(request: HttpRequest, course_slug: str, lab_slug: str) -> HttpResponse:
    lab = _lab(request, course_slug, lab_slug)
    threshold, threshold_error = _threshold(request)
    compared = similarity.compared_submissions(lab)
    by_id = {str(s.pk): s for s in compared}
    found = similarity.cached_pairs(lab, compared)
    computing = False
    if found is None and len(compared) <= similarity.SYNC_LIMIT:
        found = similarity.similar_pairs(lab, compared)
    elif found is None:
        # Too many files to tokenise within a request: the low queue computes them.
        from .tasks import lab_similarity as compute

        if similarity.computing_start(lab):
            compute.apply_async(args=[lab.pk], queue=settings.SHIPWRIGHT_LOW_QUEUE)
        computing = True
    pairs = [p for p in found or [] if p.similarity >= threshold]
    rows = [(p, by_id[p.a], by_id[p.b]) for p in pairs[:MAX_PAIRS_SHOWN] if p.a in by_id and p.b in by_id]
    return render(
        request,
        "grading/lab_similarity.html",
        {
            "lab": lab,
            "identical": similarity.identical_snapshots(lab),
            "rows": rows,
            "more": max(0, len(pairs) - MAX_PAIRS_SHOWN),
            "compared": len(compared),
            "computing": computing,
            "threshold": threshold,
            "threshold_error": threshold_error,
            "floor": similarity.FLOOR,
        },
    )


def _lab_submission(lab: Lab, raw: str) -> Submission:
    try:
        pk = uuid.UUID(raw)
    except ValueError:
        raise Http404("No such submission") from None
    return get_object_or_404(Submission.objects.select_related("user"), pk=pk, lab=lab)


@login_required
def similarity_compare(request: HttpRequest, course_slug: str, lab_slug: str) -> HttpResponse:
    """Two files side by side, the code they share marked."""
    lab = _lab(request, course_slug, lab_slug)
    a = _lab_submission(lab, request.GET.get("a", ""))
    b = _lab_submission(lab, request.GET.get("b", ""))
    a_path, b_path = request.GET.get("fa", ""), request.GET.get("fb", "")
    try:
        left, right, sim_a, sim_b = similarity.side_by_side(lab, a, a_path, b, b_path)
    except KeyError:
        raise Http404(similarity.FILE_NOT_FOUND) from None
    return render(
        request,
        "grading/similarity_compare.html",
        {
            "lab": lab,
            "sides": [(a, a_path, left, sim_a), (b, b_path, right, sim_b)],
        },
    )
