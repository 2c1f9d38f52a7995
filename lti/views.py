"""Pages of the LTI tool: the "Connect an LMS" page for site staff, the launch flow
(login initiation, launch, account linking, deep-linking picker) and the course
staff's LMS page (grade sync state, roster)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from pylti1p3.deep_link_resource import DeepLinkResource
from pylti1p3.exception import LtiException, OIDCException

from courses.access import Action, can, course_for_staff
from courses.models import Course
from grading.models import Submission
from labs.models import Lab

from . import keys, services, tasks, tool
from .forms import PlatformForm
from .models import Context, GradeSync, Membership, Platform

LAUNCH_FAILED = "Your LMS's launch could not be accepted"
DEEP_LINK_EXPIRED = "This selection has expired. Start again from your LMS."
DEEP_LINK_NOT_ALLOWED = "Only the LMS course's instructors can add Shipwright content."
OPEN_FROM_LMS = "This address is for your LMS's launches: open the activity from your LMS."
NO_KEY = "Shipwright has no LTI key yet; ask the site's administrator."
PENDING_LINK = "lti_pending_link"
DEEP_LINK_SESSION = "lti_deep_link"
BACKEND = "django.contrib.auth.backends.ModelBackend"


def tool_urls() -> dict[str, str]:
    base = settings.SITE_URL
    return {
        "login": base + reverse("lti:login"),
        "launch": base + reverse("lti:launch"),
        "deep_link": base + reverse("lti:deep-link"),
        "jwks": base + reverse("lti:jwks"),
    }


def _refused(request: HttpRequest, reason: str, status: int = 400) -> HttpResponse:
    return render(request, "lti/error.html", {"title": LAUNCH_FAILED, "reason": reason}, status=status)


# --- Connect an LMS (site staff) -----------------------------------------------------


@staff_member_required
def platform_list(request: HttpRequest) -> HttpResponse:
    try:
        key_id = keys.current_key().key_id
        key_problem = ""
    except keys.ToolKeyUnavailable as exc:
        key_id, key_problem = "", str(exc)
    return render(
        request,
        "lti/platform_list.html",
        {"urls": tool_urls(), "platforms": Platform.objects.all(), "key_id": key_id, "key_problem": key_problem},
    )


@staff_member_required
def platform_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    platform = get_object_or_404(Platform, pk=pk) if pk else None
    form = PlatformForm(request.POST or None, instance=platform)
    if request.method == "POST" and form.is_valid():
        saved = form.save()
        messages.success(request, f"Saved the registration of {saved.name}.")
        return redirect("lti:platform-list")
    return render(request, "lti/platform_form.html", {"form": form, "platform": platform, "urls": tool_urls()})


def jwks(request: HttpRequest) -> JsonResponse:
    response = JsonResponse(keys.jwks())
    response["Cache-Control"] = "public, max-age=300"
    return response


# --- The launch flow -------------------------------------------------------------------


@csrf_exempt
def login_initiate(request: HttpRequest) -> HttpResponse:
    """OIDC third-party login initiation: answer with a redirect to the LMS's
    authentication endpoint carrying a fresh state and nonce (pylti1p3)."""
    urls = tool_urls()
    params = request.POST if request.method == "POST" else request.GET
    target = params.get("target_link_uri", "")
    # Only ever send the LMS back to one of our own launch URLs.
    if target not in (urls["launch"], urls["deep_link"]):
        target = urls["launch"]
    try:
        return tool.oidc_login(request).redirect(target)
    except (OIDCException, LtiException) as exc:
        return _refused(request, str(exc))
    except keys.ToolKeyUnavailable:
        return _refused(request, NO_KEY, status=503)


@csrf_exempt
def launch(request: HttpRequest) -> HttpResponse:
    """The LMS's form post with the id_token: validated by pylti1p3 (state, signature,
    expiry, audience, registration, deployment, message) and our one-use nonce."""
    if request.method != "POST":
        return _refused(request, OPEN_FROM_LMS, status=405)
    message_launch = tool.message_launch(request)
    try:
        claims: dict[str, Any] = dict(message_launch.get_launch_data())
    except (LtiException, OIDCException) as exc:
        return _refused(request, str(exc))
    except keys.ToolKeyUnavailable:
        return _refused(request, NO_KEY, status=503)
    except (KeyError, ValueError, TypeError) as exc:
        return _refused(request, f"malformed launch ({type(exc).__name__})")
    platform = tool.find_platform(message_launch.get_iss(), message_launch.get_client_id())
    if platform is None:  # validated a moment ago; deactivated since
        return _refused(request, "Registration not found.")
    if message_launch.is_deep_link_launch():
        if services.lms_role(list(claims.get(services.CLAIM + "roles") or [])) != "instructor":
            return _refused(request, DEEP_LINK_NOT_ALLOWED, status=403)
        request.session[DEEP_LINK_SESSION] = message_launch.get_launch_id()
        return redirect("lti:deep-link-pick")
    if not message_launch.is_resource_launch():
        return _refused(request, "Shipwright only understands resource links and deep linking.")
    try:
        # One transaction: a launch refused half-way (a lab that is gone) leaves no account.
        with transaction.atomic():
            user = services.identity_resolve(platform=platform, claims=claims, current_user=request.user)
            if user is None:
                request.session[PENDING_LINK] = {"platform": platform.pk, "claims": claims}
                messages.info(request, services.EMAIL_TAKEN)
                return redirect("lti:account-link")
            target = services.launch_accept(platform=platform, claims=claims, user=user)
    except services.LaunchRefused as exc:
        return _refused(request, str(exc))
    login(request, user, backend=BACKEND)
    return redirect(target.url)


@login_required
def account_link(request: HttpRequest) -> HttpResponse:
    """Link the signed-in account to the LMS user of a launch that found an
    existing account with the same e-mail."""
    pending = request.session.get(PENDING_LINK)
    if not pending:
        return _refused(request, "There is no LMS launch waiting to be linked. Open the activity from your LMS.")
    platform = get_object_or_404(Platform, pk=pending["platform"])
    if request.method == "POST":
        claims = pending["claims"]
        try:
            with transaction.atomic():
                services.identity_link(platform=platform, sub=str(claims["sub"]), user=request.user)
                target = services.launch_accept(platform=platform, claims=claims, user=request.user)
        except services.LaunchRefused as exc:
            return _refused(request, str(exc))
        del request.session[PENDING_LINK]
        messages.success(request, f"Your account is now linked to {platform.name}.")
        return redirect(target.url)
    return render(request, "lti/account_link.html", {"platform": platform, "claims": pending["claims"]})


def deep_link_pick(request: HttpRequest) -> HttpResponse:
    """The deep-linking picker: published courses and their labs; the choice goes
    back to the LMS as an LtiResourceLink content item, signed by pylti1p3."""
    launch_id = request.session.get(DEEP_LINK_SESSION)
    if not launch_id:
        return _refused(request, DEEP_LINK_EXPIRED)
    try:
        message_launch = tool.message_launch_from_cache(launch_id, request)
    except LtiException:
        return _refused(request, DEEP_LINK_EXPIRED)
    courses = Course.objects.published().prefetch_related(
        Prefetch("labs", queryset=Lab.objects.published().order_by("order"), to_attr="published_labs")
    )
    if request.method != "POST":
        return render(request, "lti/deep_link_pick.html", {"courses": courses})
    course = Course.objects.published().filter(slug=request.POST.get("course", "")).first()
    lab = None
    if course is not None and request.POST.get("lab"):
        lab = Lab.objects.published().filter(course=course, slug=request.POST["lab"]).first()
        if lab is None:
            course = None
    if course is None:
        return render(
            request,
            "lti/deep_link_pick.html",
            {"courses": courses, "error": "Pick a published course or lab."},
            status=400,
        )
    custom = {"shipwright_course": course.slug}
    if lab is not None:
        custom["shipwright_lab"] = lab.slug
    item = (
        DeepLinkResource()
        .set_url(tool_urls()["launch"])
        .set_title(lab.title if lab else course.title)
        .set_custom_params(custom)
    )
    deep_link = message_launch.get_deep_link()
    return_url = message_launch.get_launch_data()["https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"][
        "deep_link_return_url"
    ]
    response = render(
        request,
        "lti/deep_link_return.html",
        {"return_url": return_url, "jwt": deep_link.get_response_jwt([item]), "title": item.get_title()},
    )
    del request.session[DEEP_LINK_SESSION]
    # The answer is a form the browser posts to the LMS: allow that one origin.
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(return_url))
    response._csp_update = {"form-action": [origin]}  # type: ignore[attr-defined]
    return response


# --- The course staff's LMS page --------------------------------------------------------


@login_required
def course_lms(request: HttpRequest, slug: str) -> HttpResponse:
    course = course_for_staff(request, slug, Action.VIEW_SUBMISSIONS)
    contexts = list(
        Context.objects.filter(courses=course).select_related("platform").order_by("platform__name", "title")
    )
    labs = list(Lab.objects.filter(course=course).order_by("order"))
    rows = []
    for context in contexts:
        members = list(Membership.objects.filter(context=context).select_related("user"))
        syncs: dict[tuple[int | None, int], GradeSync] = {
            (s.user_id, s.lab_id): s
            for s in GradeSync.objects.filter(context=context, lab__course=course).select_related("lab", "user")
        }
        people = []
        for member in members:
            cells = []
            for lab in labs:
                best = Submission.objects.for_user(member.user).best_for_lab(lab) if member.user_id else None
                cells.append({"lab": lab, "best": best, "sync": syncs.get((member.user_id, lab.pk))})
            people.append({"member": member, "role": services.lms_role(member.roles), "cells": cells})
        rows.append({"context": context, "people": people, "syncs": list(syncs.values())})
    return render(
        request,
        "lti/course_lms.html",
        {
            "course": course,
            "labs": labs,
            "rows": rows,
            "can_resend": can(request.user, course, Action.REGRADE),
            # E-mail addresses are personal data: the roles that may export grades see them.
            "show_emails": can(request.user, course, Action.EXPORT_GRADES),
        },
    )


@login_required
@require_POST
def grade_sync_resend(request: HttpRequest, pk: int) -> HttpResponse:
    sync = get_object_or_404(GradeSync.objects.select_related("lab__course", "user"), pk=pk)
    course = sync.lab.course
    if not can(request.user, course, Action.REGRADE):
        return _refused(request, "No such grade sync.", status=404)
    services.grade_sync_resend(sync=sync)
    messages.success(request, f"The score of {sync.user.public_name} for {sync.lab.title} will be sent again.")
    return redirect("lti:course-lms", slug=course.slug)


@login_required
@require_POST
def roster_refresh(request: HttpRequest, pk: int) -> HttpResponse:
    course = get_object_or_404(Course, slug=request.POST.get("course", ""))
    context = Context.objects.filter(pk=pk, courses=course).first()
    if context is None or not can(request.user, course, Action.REGRADE):
        return _refused(request, "No such LMS course.", status=404)
    tasks.roster_sync.delay_on_commit(context.pk)
    messages.info(request, "The roster is being read from the LMS; reload in a moment.")
    return redirect("lti:course-lms", slug=course.slug)
