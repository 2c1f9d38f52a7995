from urllib.parse import urlencode

from django import template
from django.urls import reverse

register = template.Library()


@register.filter
def get_item(mapping, key):
    return mapping.get(key) if hasattr(mapping, "get") else None


@register.inclusion_tag("certificates/_pending.html")
def pending_certificates(user) -> dict:
    """Certificates `user` earned that wait for a signing key: said, not hidden."""
    from certificates.forms import HolderNameForm
    from certificates.models import PendingCertificate
    from certificates.services import CERTIFICATE_NEEDS_NAME_TEXT, CERTIFICATE_PENDING_TEXT

    if not getattr(user, "is_authenticated", False):
        return {"pending": []}
    rows = PendingCertificate.objects.filter(user=user).select_related("course")
    if not (user.display_name or "").strip():
        # Waits for the learner's name, not for us: ask for it right here.
        texts = [CERTIFICATE_NEEDS_NAME_TEXT.format(course=row.course.title) for row in rows]
        return {"pending": texts, "name_form": HolderNameForm() if texts else None}
    return {"pending": [CERTIFICATE_PENDING_TEXT.format(course=row.course.title) for row in rows]}


@register.inclusion_tag("certificates/_reissue_offers.html")
def reissue_offers(user) -> dict:
    """On the profile: certificates that carry another name than the current one,
    each with a button to reissue it with the new name."""
    name = (getattr(user, "display_name", "") or "").strip()
    if not getattr(user, "is_authenticated", False) or not name:
        return {"offers": []}
    from certificates.models import Certificate

    offers = Certificate.objects.filter(user=user, current=True, status=Certificate.Status.VALID).exclude(
        holder_name=name
    )
    return {"offers": list(offers), "name": name}


@register.simple_tag
def dashboard_certificates(user) -> list[dict]:
    """The dashboard's certificates of `user`, each with its LinkedIn link; the
    dashboard (courses, below certificates) loads this tag instead of importing us."""
    from certificates.models import Certificate
    from certificates.services import linkedin_url

    if not getattr(user, "is_authenticated", False):
        return []
    name = (user.display_name or "").strip()
    return [
        {
            "certificate": certificate,
            "linkedin_url": linkedin_url(certificate),
            # Offered when the learner's name changed since this one was issued.
            "reissue_name": name if name and name != certificate.holder_name and certificate.status == "valid" else "",
        }
        for certificate in Certificate.objects.filter(user=user, current=True).select_related("course")
    ]


def moment_context(*, user, course, request, where: str) -> dict:
    """What `_moment.html` shows `user` about `course`'s certificate (the certificate,
    or why it waits); `where` is "verdict" or "course". Also the answer of the poll
    (certificates:moment) while the signing worker issues it."""
    return _moment(user=user, course=course, request=request, where=where) | {"where": where}


def _moment(*, user, course, request, where: str) -> dict:
    from certificates import services
    from certificates.forms import HolderNameForm

    if not getattr(user, "is_authenticated", False):
        return {}
    certificate = services.certificate_for(user=user, course=course)
    if certificate is not None:
        if certificate.status == certificate.Status.REVOKED:
            return {}
        return {
            "course": course,
            "certificate": certificate,
            "verify_url": services.verify_url(certificate.public_id),
            "linkedin_url": services.linkedin_url(certificate),
        }
    if not services.certificate_pending(user=user, course=course):
        missing = services.missing_prerequisites(user=user, course=course)
        if missing and services.labs_passed(user=user, course=course) is not None:
            # Every lab passed, but the certificate links its prerequisites' ones.
            titles = ", ".join(prerequisite.title for prerequisite in missing)
            return {
                "course": course,
                "pending": services.CERTIFICATE_NEEDS_PREREQUISITE_TEXT.format(course=course.title, missing=titles),
            }
        return {}
    if services.certificate_needs_name(user=user):
        return {
            "course": course,
            "needs_name": services.CERTIFICATE_NEEDS_NAME_TEXT.format(course=course.title),
            "name_form": HolderNameForm(),
            "next": request.get_full_path() if request else "",
        }
    if services.certificate_issuing(user=user, course=course):
        # The signing worker has it in hand: ask again until it exists (htmx).
        return {
            "course": course,
            "issuing": services.CERTIFICATE_ISSUING_TEXT.format(course=course.title),
            "poll_url": reverse("certificates:moment", args=[course.slug]) + "?" + urlencode({"where": where}),
        }
    return {"course": course, "pending": services.CERTIFICATE_PENDING_TEXT.format(course=course.title)}


@register.inclusion_tag("certificates/_moment.html", takes_context=True)
def certificate_moment(context, submission) -> dict:
    """On a passed verdict of a lab the course's certificate requires: the learner
    completed the course. Says so, with the certificate, its share link and
    LinkedIn's "Add to profile" (or why it waits). Grading's template loads this
    tag; grading never imports certificates."""
    if getattr(submission, "status", None) != "passed":
        return {}
    course = submission.lab.course
    if submission.lab.slug not in {r.get("lab") for r in course.requirements or []}:
        return {}
    request = context.get("request")
    user = getattr(request, "user", None) if request else None
    if user is None or user.pk != submission.user_id:
        return {}  # staff looking at a learner's submission see the verdict only
    return moment_context(user=user, course=course, request=request, where="verdict")


@register.inclusion_tag("certificates/_moment.html", takes_context=True)
def course_certificate(context, course) -> dict:
    """The course page's "complete" card: the certificate, or why it waits."""
    request = context.get("request")
    user = getattr(request, "user", None) if request else None
    return moment_context(user=user, course=course, request=request, where="course")


@register.inclusion_tag("certificates/_prerequisites.html", takes_context=True)
def course_prerequisites(context, course) -> dict:
    """The prerequisite courses of `course` on the catalog and the course page, each
    with whether the viewer holds its certificate (done) or not yet. Courses load
    this tag: they sit below certificates and never import them."""
    from certificates import services

    request = context.get("request")
    user = getattr(request, "user", None) if request else None
    prerequisites = course.prerequisite_courses()
    if not prerequisites:
        return {"items": []}
    signed_in = getattr(user, "is_authenticated", False)
    missing = {c.pk for c in services.missing_prerequisites(user=user, course=course)} if signed_in else set()
    return {
        "course": course,
        "signed_in": signed_in,
        "items": [{"course": c, "done": signed_in and c.pk not in missing} for c in prerequisites],
        "all_done": signed_in and not missing,
    }
