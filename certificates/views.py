from __future__ import annotations

import json
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET, require_POST

from . import keys, services, standalone
from .models import Certificate
from .pdf import render_certificate_pdf
from .ratelimit import rate_limited

NOT_FOUND = "There is no public certificate with this id."
WITHDRAWN_HOLDER = "Name removed at the request of the holder"


def withdrawn_by_holder(certificate: Certificate) -> bool:
    """Revoked because the holder deleted their account: nothing public may name them
    any more (older rows may still hold the name, so this is decided here, not by
    what the row contains)."""
    return (
        certificate.status == Certificate.Status.REVOKED and certificate.status_reason == services.WITHDRAWN_BY_HOLDER
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
        },
    )


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
    """LinkedIn's "Add to profile" link with the certificate's fields filled in."""
    return "https://www.linkedin.com/profile/add?" + urlencode(
        {
            "startTask": "CERTIFICATION_NAME",
            "name": certificate.title,
            "organizationName": services.ISSUER_NAME,
            "issueYear": certificate.issued_at.year,
            "issueMonth": certificate.issued_at.month,
            "certUrl": services.verify_url(certificate.public_id),
            "certId": certificate.public_id,
        }
    )
