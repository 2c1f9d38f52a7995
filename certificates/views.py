from __future__ import annotations

import json

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET, require_POST

from accounts.models import User

from . import keys, services, standalone
from .forms import HolderNameForm
from .models import Certificate
from .pdf import render_certificate_pdf
from .ratelimit import rate_limited

NOT_FOUND = "There is no public certificate with this id."
WITHDRAWN_HOLDER = "Name removed at the request of the holder"


def withdrawn_by_holder(certificate: Certificate) -> bool:
    """Revoked because the holder deleted their account: nothing public may name them
    any more (older rows may still hold the name, so this is decided here, not by
    what the row contains)."""
    return certificate.status == Certificate.Status.REVOKED and (
        certificate.status_reason == services.WITHDRAWN_BY_HOLDER or not certificate.credential
    )


def _public_certificate(public_id: str) -> Certificate | None:
    """The certificate if it exists and its holder made it public."""
    return Certificate.objects.select_related("course").filter(public_id=public_id, public=True).first()


def _not_found(request: HttpRequest) -> HttpResponse:
    """Unknown and hidden ids get the very same page, rendered here rather than by
    handler404 so that it is the site's page under DEBUG too (Django's debug 404
    lists every URL pattern). An anonymous visitor gets no CSRF cookie from it (so
    the two cases cannot be told apart by a cookie either)."""
    context = {"not_found": NOT_FOUND}
    if not request.user.is_authenticated:
        context["csrf_token"] = ""
    return render(request, "certificates/not_found.html", context, status=404)


@require_GET
@rate_limited
def verify(request: HttpRequest, public_id: str) -> HttpResponse:
    certificate = _public_certificate(public_id)
    if certificate is None:
        return _not_found(request)
    if withdrawn_by_holder(certificate):
        # The signed credential names the holder: it is neither shown nor checked.
        return render(
            request,
            "certificates/verify.html",
            {"certificate": certificate, "withdrawn": True, "withdrawn_holder": WITHDRAWN_HOLDER},
        )
    report = services.certificate_verify(certificate)
    credential = json.loads(certificate.credential)
    titles = dict(certificate.course.labs.values_list("slug", "title"))
    issuer = credential.get("issuer") if isinstance(credential.get("issuer"), dict) else {}
    return render(
        request,
        "certificates/verify.html",
        {
            "certificate": certificate,
            "report": report,
            "credential": credential,
            "required_labs": [titles.get(r["lab"], r["lab"]) for r in certificate.course.requirements],
            "verify_url": services.verify_url(certificate.public_id),
            "issuer_name": issuer.get("name") or services.ISSUER_NAME,
            "issuer_origin": (issuer.get("url") or settings.SITE_URL).rstrip("/"),
            "issuer_did": issuer.get("id") or keys.issuer_did(),
            "status_list_url": services.status_list_url(),
            "suspension_list_url": services.status_list_url(services.SUSPENSION_LIST_SLUG),
            "verifier_filename": standalone.FILENAME,
            "verifier_requirements": " ".join(standalone.requirements()),
            "replaced_by": _public_successor(certificate),
        },
    )


def _public_successor(certificate: Certificate) -> Certificate | None:
    """The certificate that superseded this one, if its page is public too."""
    successor = Certificate.objects.filter(replaces=certificate, public=True).only("public_id", "issued_at").first()
    return successor


@require_GET
@rate_limited
def credential_json(request: HttpRequest, public_id: str) -> HttpResponse:
    certificate = _public_certificate(public_id)
    if certificate is None or withdrawn_by_holder(certificate):
        # A withdrawn one names the holder. Verifiers holding a copy still learn from
        # the status list that it was revoked.
        return _not_found(request)
    response = HttpResponse(certificate.credential.encode(), content_type="application/vc+ld+json")
    response["Content-Disposition"] = f'inline; filename="{certificate.public_id}.json"'
    response["Access-Control-Allow-Origin"] = "*"
    return response


@require_GET
@cache_control(public=True, max_age=300)
def did_json(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(keys.did_document_json(), content_type="application/did+json")
    response["Access-Control-Allow-Origin"] = "*"
    return response


@require_GET
@cache_control(public=True, max_age=60)
def status_list(request: HttpRequest, slug: str) -> HttpResponse:
    """A signed status list (revocation or suspension): no cookies, no logging of who
    asked, cacheable."""
    if slug not in services.STATUS_LIST_SLUGS:
        raise Http404
    response = HttpResponse(services.status_list_json(slug), content_type="application/vc+ld+json")
    response["Access-Control-Allow-Origin"] = "*"
    return response


@require_GET
@cache_control(public=True, max_age=3600)
def verifier_download(request: HttpRequest) -> HttpResponse:
    """The standalone offline verifier (certificates/standalone.py), one file."""
    response = HttpResponse(standalone.verifier_zipapp(), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{standalone.FILENAME}"'
    response["Access-Control-Allow-Origin"] = "*"
    return response


def _own_certificate(request: HttpRequest, public_id: str) -> Certificate:
    return get_object_or_404(Certificate.objects.select_related("course"), public_id=public_id, user=request.user)


@login_required
def certificate_pdf(request: HttpRequest, public_id: str) -> HttpResponse:
    certificate = _own_certificate(request, public_id)
    pdf = render_certificate_pdf(
        display_name=certificate.holder_name,
        course_title=certificate.title,
        issued_on=certificate.issued_at.date(),
        credential_id=certificate.public_id,
        verify_url=services.verify_url(certificate.public_id),
    )
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="shipwright-{certificate.course.slug}.pdf"'
    return response


@login_required
@require_POST
def certificate_settings(request: HttpRequest, public_id: str) -> HttpResponse:
    certificate = _own_certificate(request, public_id)
    certificate.public = request.POST.get("public") == "on"
    certificate.show_evidence = request.POST.get("show_evidence") == "on"
    certificate.save(update_fields=["public", "show_evidence"])
    messages.success(request, "Certificate privacy saved.")
    return redirect("courses:dashboard")


def linkedin_url(certificate: Certificate) -> str:
    return services.linkedin_url(certificate)


REISSUED = "Your certificate was reissued with the name {name}. The earlier one now says it was superseded."
REISSUE_NEEDS_NAME = "Set the name to print on your certificates on your profile first."
REISSUE_LATER = "Certificates cannot be signed right now; nothing was changed. Please try again later."
NAME_SAVED = "Saved: your certificates will read {name}."


@login_required
@require_POST
def certificate_reissue(request: HttpRequest, public_id: str) -> HttpResponse:
    """Reissue one of my certificates with my current name (the old one is revoked
    as superseded and links to the new one)."""
    certificate = _own_certificate(request, public_id)
    try:
        new = services.certificate_reissue(certificate=certificate, by=request.user)
    except services.ReissueRefused as exc:
        messages.error(request, exc.message)
    except services.HolderNameMissing:
        messages.error(request, REISSUE_NEEDS_NAME)
    except keys.SigningKeyUnavailable:
        messages.error(request, REISSUE_LATER)
    else:
        messages.success(request, REISSUED.format(name=new.holder_name))
    return redirect("courses:dashboard")


@login_required
@require_GET
def certificate_moment(request: HttpRequest, course_slug: str) -> HttpResponse:
    """The certificate moment of the verdict or course page, polled (htmx) while the
    signing worker issues the certificate: once it exists the answer shows it and
    carries no poll. Only ever about the requester's own certificate, so any course
    slug answers alike (nothing about a course leaks)."""
    from courses.models import Course

    from .templatetags.certificates_extras import moment_context

    where = "course" if request.GET.get("where") == "course" else "verdict"
    course = Course.objects.filter(slug=course_slug).first()
    context = moment_context(user=request.user, course=course, request=request, where=where) if course else {}
    if "next" in context:
        # Back to the page that polls, not to this fragment (checked when the form posts).
        context["next"] = request.headers.get("HX-Current-URL", "/dashboard/")
    return render(request, "certificates/_moment.html", context)


@login_required
@require_POST
def holder_name_set(request: HttpRequest) -> HttpResponse:
    """Save the name to print on my certificates, then issue any that waited for it."""
    form = HolderNameForm(request.POST)
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = "/dashboard/"
    if not form.is_valid():
        messages.error(request, "Give the name to print on your certificates.")
        return redirect(target)
    user = request.user
    assert isinstance(user, User)  # login_required
    user.display_name = form.cleaned_data["display_name"]
    user.save(update_fields=["display_name"])
    services.certificates_issue_pending(user=user)
    messages.success(request, NAME_SAVED.format(name=user.display_name))
    return redirect(target)
