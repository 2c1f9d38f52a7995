"""Writes of the LTI tool: accepting a launch (account linking, course roles,
enrollment), sending scores to LMS gradebooks, reading rosters."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from pylti1p3.assignments_grades import AssignmentsGradesService
from pylti1p3.grade import Grade
from pylti1p3.lineitem import LineItem as LtiLineItem
from pylti1p3.names_roles import NamesRolesProvisioningService
from pylti1p3.service_connector import ServiceConnector

from courses.models import Course, CourseStaff
from courses.services import enrollment_create
from grading.models import Submission
from labs.models import Lab

from .models import Context, GradeSync, Identity, LineItem, Membership, Platform
from .tool import registration_for

log = logging.getLogger(__name__)

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
AGS_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
NRPS_CLAIM = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"

NO_TARGET = "This LMS link does not name a Shipwright course or lab. Ask your instructor to add it again."
UNKNOWN_TARGET = "The course or lab this LMS link points to is not available on Shipwright."
ALREADY_LINKED = "Your Shipwright account is already linked to another user of this LMS."
EMAIL_TAKEN = "A Shipwright account already uses the e-mail address your LMS sent. Sign in to link it."


class LaunchRefused(Exception):
    """A valid launch we cannot serve; the message is shown to the person."""


@dataclass(frozen=True)
class LaunchTarget:
    course: Course
    lab: Lab | None

    @property
    def url(self) -> str:
        return (self.lab or self.course).get_absolute_url()


def lms_role(roles: list[str]) -> str | None:
    """The course role an LMS context role maps to (None for learners). Institution
    roles (administrator of the university) give nothing on a course."""
    for role in roles:
        if role.endswith("#TeachingAssistant") or role == "TeachingAssistant":
            return CourseStaff.Role.TA
    for role in roles:
        if role in ("Instructor", "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"):
            return CourseStaff.Role.INSTRUCTOR
    return None


def target_resolve(custom: dict[str, Any], context: Context | None) -> LaunchTarget:
    course_slug = str(custom.get("shipwright_course") or "")
    lab_slug = str(custom.get("shipwright_lab") or "")
    if not course_slug:
        linked = list(context.courses.all()[:2]) if context is not None else []
        if len(linked) == 1:
            return LaunchTarget(course=linked[0], lab=None)
        raise LaunchRefused(NO_TARGET)
    course = Course.objects.filter(slug=course_slug, published=True).first()
    if course is None:
        raise LaunchRefused(UNKNOWN_TARGET)
    lab = None
    if lab_slug:
        lab = Lab.objects.published().filter(course=course, slug=lab_slug).first()
        if lab is None:
            raise LaunchRefused(UNKNOWN_TARGET)
    return LaunchTarget(course=course, lab=lab)


def _placeholder_email(platform: Platform, sub: str) -> str:
    digest = hashlib.sha256(f"{platform.issuer}\n{sub}".encode()).hexdigest()[:20]
    return f"lti-{platform.pk}-{digest}@lti.invalid"


def identity_resolve(*, platform: Platform, claims: dict[str, Any], current_user) -> Any | None:
    """The account for the launch's user: the linked one; else the signed-in one,
    linked now (once); else a new account from the claims. None when the claims'
    e-mail belongs to an existing account: that person must sign in to link it (an
    LMS's word is not enough to take over an account)."""
    User = get_user_model()
    sub = str(claims["sub"])
    identity = Identity.objects.filter(platform=platform, sub=sub).select_related("user").first()
    if identity is not None:
        return identity.user
    if current_user is not None and current_user.is_authenticated:
        return identity_link(platform=platform, sub=sub, user=current_user)
    email = (claims.get("email") or "").strip().lower()
    if email and User.objects.filter(email__iexact=email).exists():
        return None
    user = User.objects.create_user(
        email=email or _placeholder_email(platform, sub),
        display_name=(claims.get("name") or "").strip()[:200],
    )
    Identity.objects.create(platform=platform, sub=sub, user=user)
    return user


def identity_link(*, platform: Platform, sub: str, user) -> Any:
    """Link `user` to the platform's user `sub`; an account links once per platform."""
    existing = Identity.objects.filter(platform=platform, user=user).first()
    if existing is not None and existing.sub != sub:
        raise LaunchRefused(ALREADY_LINKED)
    Identity.objects.get_or_create(platform=platform, sub=sub, defaults={"user": user})
    return user


def _course_role_grant(*, user, course: Course, role: str | None) -> None:
    """Give an LMS instructor or TA the matching role; never lowers or replaces a
    role given on Shipwright."""
    if role is not None:
        CourseStaff.objects.get_or_create(user=user, course=course, defaults={"role": role})


@transaction.atomic
def launch_accept(*, platform: Platform, claims: dict[str, Any], user) -> LaunchTarget:
    """Record what a validated resource-link launch says (context, its services,
    membership, course role) and enroll the user; returns where to send them."""
    context_claim = claims.get(CLAIM + "context") or {}
    context = None
    if context_claim.get("id"):
        context, _ = Context.objects.get_or_create(platform=platform, context_id=str(context_claim["id"]))
    target = target_resolve(claims.get(CLAIM + "custom") or {}, context)
    roles = list(claims.get(CLAIM + "roles") or [])
    if context is not None:
        ags = claims.get(AGS_CLAIM) or {}
        nrps = claims.get(NRPS_CLAIM) or {}
        context.title = str(context_claim.get("title") or context_claim.get("label") or "")[:255]
        context.deployment_id = str(claims.get(CLAIM + "deployment_id") or "")
        if ags.get("lineitems"):
            context.lineitems_url = ags["lineitems"]
            context.ags_scopes = list(ags.get("scope") or [])
        if nrps.get("context_memberships_url"):
            context.memberships_url = nrps["context_memberships_url"]
        context.save()
        context.courses.add(target.course)
        Membership.objects.update_or_create(
            context=context,
            sub=str(claims["sub"]),
            defaults={
                "user": user,
                "name": str(claims.get("name") or "")[:255],
                "email": str(claims.get("email") or "")[:254],
                "roles": roles,
            },
        )
    _course_role_grant(user=user, course=target.course, role=lms_role(roles))
    if not user.display_name and claims.get("name"):
        user.display_name = str(claims["name"]).strip()[:200]
        user.save(update_fields=["display_name"])
    enrollment_create(user=user, course=target.course)
    return target


# --- Assignment and Grade Services -------------------------------------------------


def grade_sync_schedule(submission: Submission) -> None:
    """grading.hooks.submission_graded: for every LMS course (with a gradebook
    service) the learner launched from that shows this lab's course, mark the
    score pending and send it from a task once the grading transaction commits."""
    from . import tasks

    memberships = Membership.objects.filter(
        user_id=submission.user_id, context__courses=submission.lab.course_id
    ).exclude(context__lineitems_url="")
    for membership in memberships:
        sync, _ = GradeSync.objects.update_or_create(
            context_id=membership.context_id,
            user_id=submission.user_id,
            lab_id=submission.lab_id,
            defaults={"status": GradeSync.Status.PENDING, "last_error": ""},
        )
        tasks.grade_sync_send.delay_on_commit(sync.pk)


def grade_sync_resend(*, sync: GradeSync) -> None:
    from . import tasks

    GradeSync.objects.filter(pk=sync.pk).update(status=GradeSync.Status.PENDING, last_error="", attempts=0)
    tasks.grade_sync_send.delay_on_commit(sync.pk)


def _ags(context: Context) -> AssignmentsGradesService:
    connector = ServiceConnector(registration_for(context.platform))
    return AssignmentsGradesService(connector, {"scope": context.ags_scopes, "lineitems": context.lineitems_url})


def line_item_ensure(*, context: Context, lab: Lab, ags: AssignmentsGradesService) -> str:
    """The URL of the lab's column in the LMS course's gradebook, created when
    missing (found again by its resourceId, the lab's full slug)."""
    row = LineItem.objects.filter(context=context, lab=lab).first()
    if row is not None:
        return row.url
    wanted = (
        LtiLineItem().set_label(lab.title).set_score_maximum(100).set_resource_id(lab.full_slug).set_tag("shipwright")
    )
    found = ags.find_or_create_lineitem(wanted, find_by="resource_id")
    url = found.get_id()
    if not url:
        raise RuntimeError("the LMS answered without the line item's id")
    LineItem.objects.update_or_create(context=context, lab=lab, defaults={"url": url})
    return url


def grade_sync_send(sync_id: int) -> GradeSync | None:
    """Send the learner's best score for the lab (as a percentage) to the lab's line
    item. Idempotent: it always sends the current best, so a repeat changes nothing.
    Raises on a network or LMS failure (the task retries)."""
    sync = GradeSync.objects.select_related("context__platform", "lab", "user").filter(pk=sync_id).first()
    if sync is None:
        return None
    context = sync.context
    identity = Identity.objects.filter(platform=context.platform, user=sync.user).first()
    best = Submission.objects.for_user(sync.user).best_for_lab(sync.lab)
    if identity is None or best is None or best.score is None or not best.max_score:
        GradeSync.objects.filter(pk=sync.pk).update(
            status=GradeSync.Status.FAILED, last_error="no linked LMS user or no graded attempt"
        )
        return sync
    percent = round(100.0 * float(best.score) / float(best.max_score), 2)
    ags = _ags(context)
    url = line_item_ensure(context=context, lab=sync.lab, ags=ags)
    now = timezone.now()
    grade = (
        Grade()
        .set_score_given(percent)
        .set_score_maximum(100)
        .set_timestamp(now.isoformat())
        .set_activity_progress("Completed")
        .set_grading_progress("FullyGraded")
        .set_user_id(identity.sub)
        .set_comment(f"Shipwright: best attempt {best.status}")
    )
    ags.put_grade(grade, LtiLineItem({"id": url}))
    GradeSync.objects.filter(pk=sync.pk).update(
        status=GradeSync.Status.SENT, score_given=percent, score_maximum=100, sent_at=now, last_error=""
    )
    sync.refresh_from_db()
    return sync


def grade_sync_failed(*, sync_id: int, error: str, final: bool) -> None:
    from django.db.models import F

    GradeSync.objects.filter(pk=sync_id).update(
        attempts=F("attempts") + 1,
        last_error=error[:2000],
        status=GradeSync.Status.FAILED if final else GradeSync.Status.PENDING,
    )


def used_nonces_prune() -> None:
    """grading.hooks.maintenance: forget nonces of launches older than two days. Their
    id_tokens expired long before, and pylti1p3's record of issuing the nonce (one
    day) is gone too, so a replay is refused without this row."""
    from datetime import timedelta

    from .models import UsedNonce

    UsedNonce.objects.filter(created_at__lt=timezone.now() - timedelta(days=2)).delete()


# --- Names and Role Provisioning Services --------------------------------------------


def roster_sync(context_id: int) -> int:
    """Read the LMS course's roster (NRPS), record every member, and give linked
    LMS instructors and TAs their course role. Returns the number of members."""
    context = Context.objects.select_related("platform").get(pk=context_id)
    courses = list(context.courses.all())
    if not context.memberships_url:
        raise LaunchRefused("This LMS course did not offer its roster (Names and Role Provisioning).")
    service = NamesRolesProvisioningService(
        ServiceConnector(registration_for(context.platform)), {"context_memberships_url": context.memberships_url}
    )
    members = service.get_members()
    linked = dict(Identity.objects.filter(platform=context.platform).values_list("sub", "user_id"))
    with transaction.atomic():
        Membership.objects.filter(context=context).update(in_roster=False)
        for member in members:
            sub = str(member.get("user_id"))
            user_id = linked.get(sub)
            roles = list(member.get("roles") or [])
            Membership.objects.update_or_create(
                context=context,
                sub=sub,
                defaults={
                    "name": str(member.get("name") or "")[:255],
                    "email": str(member.get("email") or "")[:254],
                    "roles": roles,
                    "status": str(member.get("status") or "Active")[:20],
                    "in_roster": True,
                    **({"user_id": user_id} if user_id else {}),
                },
            )
            for course in courses if user_id else []:
                _course_role_grant(user=get_user_model()(pk=user_id), course=course, role=lms_role(roles))
        Context.objects.filter(pk=context.pk).update(roster_synced_at=timezone.now())
    return len(members)
