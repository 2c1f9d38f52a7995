"""The submission API for learners' own CI: personal token, JSON in and out."""

from __future__ import annotations

import json

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from accounts.services import api_token_authenticate
from config.client import client_ip
from labs.models import Lab

from . import services
from .models import Submission
from .uploads import UPLOAD_TOO_LARGE, CappedUploadHandler

# Room for the multipart boundaries and headers around a file of the cap's size.
MULTIPART_OVERHEAD = 64 * 1024
UNAUTHORIZED = "Missing or invalid API token: send 'Authorization: Bearer <token>' (create one on your profile page)."


def _user(request: HttpRequest):
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return api_token_authenticate(token.strip())


def _error(message: str, status: int) -> JsonResponse:
    response = JsonResponse({"error": message}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="shipwright"'
    return response


def _too_large() -> JsonResponse:
    cap = settings.SHIPWRIGHT_UPLOAD_MAX_BYTES
    return _error(UPLOAD_TOO_LARGE.format(mb=cap / 1024 / 1024), 413)


@csrf_exempt
@require_POST
def submission_create(request: HttpRequest, course_slug: str, lab_slug: str) -> JsonResponse:
    user = _user(request)
    if user is None:
        return _error(UNAUTHORIZED, 401)
    lab = Lab.objects.published().select_related("course").filter(course__slug=course_slug, slug=lab_slug).first()
    if lab is None:
        return _error(f"No lab {course_slug}/{lab_slug}.", 404)
    cap = settings.SHIPWRIGHT_UPLOAD_MAX_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > cap + MULTIPART_OVERHEAD:
        return _too_large()  # refused before a byte of the body is read
    # Counts the file's bytes as they stream in and stops past the cap, before the
    # upload is stored anywhere (a chunked body has no Content-Length to check first).
    request.upload_handlers.insert(0, CappedUploadHandler(request, cap=cap))
    files = request.FILES
    if getattr(request, "upload_too_large", False):
        return _too_large()
    upload = files.get("archive") or files.get("file")
    git_url = git_ref = ""
    if upload is None:
        try:
            body = json.loads(request.body or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error("Send a multipart form with an 'archive' file, or JSON with 'git_url'.", 400)
        if not isinstance(body, dict) or not isinstance(body.get("git_url"), str) or not body["git_url"].strip():
            return _error("Send a multipart form with an 'archive' file, or JSON with 'git_url'.", 400)
        git_url = body["git_url"].strip()
        git_ref = str(body.get("ref") or "").strip()
        if lab.kind == Lab.Kind.NOTEBOOK:
            return _error("This is a notebook lab: upload one .ipynb file as 'archive'.", 400)
    try:
        # Stored as received; the intake queue unpacks or clones it, never this request.
        submission = services.submission_receive(
            user=user, lab=lab, upload=upload, git_url=git_url, git_ref=git_ref, client_ip=client_ip(request)
        )
    except services.SubmissionThrottled as exc:
        response = _error(exc.message, 429)
        if exc.retry_after_s is not None:
            response["Retry-After"] = str(exc.retry_after_s)
        return response
    except services.SubmissionRejected as exc:  # SourceRejected, LabClosed
        return _error(exc.message, 400)
    return JsonResponse(
        {
            "id": str(submission.pk),
            "status": submission.status,
            "status_url": request.build_absolute_uri(f"/api/v1/submissions/{submission.pk}"),
            "html_url": request.build_absolute_uri(submission.get_absolute_url()),
        },
        status=201,
    )


@require_GET
def submission_detail(request: HttpRequest, pk) -> JsonResponse:
    user = _user(request)
    if user is None:
        return _error(UNAUTHORIZED, 401)
    submission = Submission.objects.select_related("lab", "lab__course").filter(pk=pk, user=user).first()
    if submission is None:
        return _error("No such submission.", 404)
    # Additive to the contract's keys: why a submission waits (a retry after a
    # platform failure, a lost worker) or why it ended in a platform error.
    document = services.submission_result_document(submission)
    detail = services.submission_status_detail(submission)
    if detail:
        document = {**document, "status_detail": detail}
    return JsonResponse(document)
