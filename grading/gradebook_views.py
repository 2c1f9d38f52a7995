"""The instructor's cockpit pages: a course's gradebook (HTML and JSON) and its
at-risk learners. Every filter and sort is a query parameter, so the pages work
without JavaScript and a filtered view can be bookmarked or shared with a colleague.

Who sees what (courses/access.py): every role on the course (instructor, TA,
auditor) opens the gradebook and the at-risk list, as they open every submission;
the exports (CSV, JSON) carry e-mail addresses away, so they need EXPORT_GRADES.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.http import urlencode

from courses.access import Action, can, course_for_staff

from .gradebook import (
    NOT_PASSED,
    SORT_ACTIVITY,
    SORT_EMAIL,
    SORT_NAME,
    SORT_PASSED,
    CellStatus,
    Gradebook,
    GradebookQueryError,
    course_at_risk,
    course_gradebook,
    gradebook_filters,
)

PER_PAGE = 100
AT_RISK_DAYS, AT_RISK_FAILURES = 7, 3
BAD_NUMBER = "{name} must be a whole number from {low} to {high}, not {value!r}."
FILTER_PARAMS = ("q", "lab", "status", "sort", "dir")


def _query_string(request: HttpRequest, **changes: str) -> str:
    params = {name: request.GET.get(name, "") for name in FILTER_PARAMS}
    params.update(changes)
    return urlencode({name: value for name, value in params.items() if value})


def _columns(request: HttpRequest, book: Gradebook, query: dict) -> list[dict]:
    """Header cells: each a link that sorts by it (again: the other direction)."""
    columns = [(SORT_NAME, "Learner"), (SORT_EMAIL, "E-mail")]
    # A lab's slug heads its column (short; its title is the header's tooltip).
    columns += [(lab.slug, lab.slug) for lab in book.labs]
    columns += [(SORT_PASSED, "Labs passed"), (SORT_ACTIVITY, "Last activity")]
    result = []
    for key, label in columns:
        current = query["sort"] == key
        descending = current and query["descending"]
        result.append(
            {
                "key": key,
                "label": label,
                "title": next((lab.title for lab in book.labs if lab.slug == key), ""),
                "is_lab": key not in (SORT_NAME, SORT_EMAIL, SORT_PASSED, SORT_ACTIVITY),
                "url": "?" + _query_string(request, sort=key, dir="" if descending or not current else "desc", page=""),
                "aria_sort": ("descending" if descending else "ascending") if current else "none",
            }
        )
    return result


@login_required
def course_gradebook_page(request: HttpRequest, course_slug: str) -> HttpResponse:
    course = course_for_staff(request, course_slug, Action.VIEW_SUBMISSIONS)
    query = gradebook_filters(request.GET)
    try:
        book = course_gradebook(course, **query)
    except GradebookQueryError as exc:
        error, query = str(exc), gradebook_filters(request.GET) | {"lab": "", "status": "", "sort": SORT_NAME}
        book = course_gradebook(course, text=query["text"])
        status_code = 400
    else:
        error, status_code = "", 200
    page = Paginator(book.rows, PER_PAGE).get_page(request.GET.get("page"))
    labs = [{"lab": lab, "counts": book.counts[lab.slug]} for lab in book.labs]
    return render(
        request,
        "grading/gradebook.html",
        {
            "course": course,
            "book": book,
            "labs": labs,
            "page": page,
            "columns": _columns(request, book, query),
            "query": query,
            "error": error,
            "statuses": [(s.value, f"{s.symbol} {s.label}") for s in CellStatus] + [(NOT_PASSED, "not passed")],
            "filtered": bool(query["text"] or (query["lab"] and query["status"])),
            "export_query": _query_string(request, page=""),
            "page_query": _query_string(request, page=""),
            "can_export_grades": can(request.user, course, Action.EXPORT_GRADES),
        },
        status=status_code,
    )


@login_required
def course_gradebook_json(request: HttpRequest, course_slug: str) -> HttpResponse:
    """The gradebook as JSON, with the page's filters and sort; every learner (no
    pages). Personal data, so only roles that may export grades get it."""
    course = course_for_staff(request, course_slug, Action.EXPORT_GRADES)
    try:
        book = course_gradebook(course, **gradebook_filters(request.GET))
    except GradebookQueryError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    document = {
        "course": course.slug,
        "labs": [{"slug": lab.slug, "title": lab.title} for lab in book.labs],
        "enrolled": book.enrolled,
        "learners": [
            {
                "email": row.email,
                "name": row.name,
                "labs_passed": row.labs_passed,
                "last_activity": row.last_activity.isoformat() if row.last_activity else None,
                "labs": {lab.slug: cell.as_json() for lab, cell in zip(book.labs, row.cells, strict=True)},
            }
            for row in book.rows
        ],
    }
    response = JsonResponse(document, json_dumps_params={"ensure_ascii": False})
    response["Content-Disposition"] = f'attachment; filename="{course.slug}-gradebook.json"'
    return response


def _whole_number(request: HttpRequest, name: str, default: int, low: int, high: int) -> tuple[int, str]:
    raw = request.GET.get(name, "").strip()
    if not raw:
        return default, ""
    if raw.isdigit() and low <= int(raw) <= high:
        return int(raw), ""
    return default, BAD_NUMBER.format(name=name, low=low, high=high, value=raw)


@login_required
def course_at_risk_page(request: HttpRequest, course_slug: str) -> HttpResponse:
    course = course_for_staff(request, course_slug, Action.VIEW_SUBMISSIONS)
    days, days_error = _whole_number(request, "days", AT_RISK_DAYS, 1, 3650)
    failures, failures_error = _whole_number(request, "failures", AT_RISK_FAILURES, 1, 1000)
    errors = [e for e in (days_error, failures_error) if e]
    learners = course_at_risk(course, days=days, failures=failures)
    return render(
        request,
        "grading/at_risk.html",
        {"course": course, "learners": learners, "days": days, "failures": failures, "errors": errors},
        status=400 if errors else 200,
    )
