from __future__ import annotations

import functools
import json

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
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


def _anonymous_no_csrf_cookie(request: HttpRequest, context: dict) -> dict:
    """An anonymous visitor of a public certificate page gets no CSRF cookie: the
    page has no form for them (base.html renders the token for htmx and the logout
    form, which only a signed-in user has)."""
    if not request.user.is_authenticated:
        context["csrf_token"] = ""
    return context


def _not_found(request: HttpRequest) -> HttpResponse:
    """Unknown and hidden ids get the very same page, rendered here rather than by
    handler404 so that it is the site's page under DEBUG too (Django's debug 404
    lists every URL pattern). An anonymous visitor gets no CSRF cookie from it (so
    the two cases cannot be told apart by a cookie either)."""
    context = _anonymous_no_csrf_cookie(request, {"not_found": NOT_FOUND})
    return render(request, "certificates/not_found.html", context, status=404)


# Stands for the id in the verify page's query while it is compiled.
_ANY_ID = "\x00public_id"


@functools.cache
def _verify_sql() -> tuple[str, tuple, int]:
    """The verify page's one query: the public certificate and what verifying needs
    besides its credential (both status lists, the version of the key set). Written
    with the ORM, compiled to SQL once per process: compiling it took longer than
    running it. Returns the SQL, its parameters and where the id goes among them."""
    queryset = Certificate.objects.annotate(**services.verification_inputs()).filter(public=True, public_id=_ANY_ID)
    sql, params = queryset.order_by()[:1].query.sql_with_params()
    return sql, tuple(params), params.index(_ANY_ID)


def _certificate_to_verify(public_id: str) -> Certificate | None:
    sql, params, at = _verify_sql()
    return next(iter(Certificate.objects.raw(sql, (*params[:at], public_id, *params[at + 1 :]))), None)


@require_GET
@rate_limited
def verify(request: HttpRequest, public_id: str) -> HttpResponse:
    certificate = _certificate_to_verify(public_id)
    if certificate is None:
        return _not_found(request)
    withdrawn = withdrawn_by_holder(certificate)
    texts: tuple[str, ...] = ()
    extra: dict = {}
    if not withdrawn:  # a withdrawn credential names the holder: it is neither shown nor checked
        texts = services.certificate_verification_texts(certificate)
        # Read only for the pages that show them (a query each).
        if not certificate.show_evidence or not certificate.evidence:
            titles = dict(certificate.course.labs.values_list("slug", "title"))
            extra["required_labs"] = [titles.get(r["lab"], r["lab"]) for r in certificate.course.requirements]
        if certificate.status == Certificate.Status.REVOKED and certificate.status_reason == services.SUPERSEDED:
            extra["replaced_by"] = _public_successor(certificate)
    if request.user.is_authenticated or len(messages.get_messages(request)):
        # The page names who is signed in and shows their messages: rendered for them.
        context = _verify_context(certificate, withdrawn) | extra
        return render(request, "certificates/verify.html", _anonymous_no_csrf_cookie(request, context))
    # Everyone else sees the same page, which is rendered once per distinct set of
    # inputs: the certificate's whole row, the exact texts its verdict rests on
    # (credential, DID document, both status lists), the minute (date checks) and the
    # site's address. Tampering, a revocation or a rotation changes the key, so it
    # shows on the very next request.
    key = (
        _stored(certificate),
        _stored(certificate.replaces),  # a query, on a reissued certificate's page only
        texts,
        services.verification_minute(),
        settings.SITE_URL,
        tuple(extra.get("required_labs", ())),
        _stored(extra.get("replaced_by")),
    )
    page = _PAGES.get(key)
    if page is None:
        context = _verify_context(certificate, withdrawn) | extra | {"csrf_token": ""}
        page = render_to_string("certificates/verify.html", context, request)
        if len(_PAGES) >= _PAGES_MAX:
            _PAGES.clear()
        _PAGES[key] = page
    return HttpResponse(page)


# Verify pages as an anonymous visitor sees them, per process, under everything
# they are made of (see `verify`). Emptied when full: the minute is part of every
# key, so old entries pile up.
_PAGES: dict[tuple, str] = {}
_PAGES_MAX = 256


def _stored(row: Certificate | None) -> tuple:
    """Every stored field of a row, as a hashable tuple."""
    if row is None:
        return ()
    values = (getattr(row, field.attname) for field in row._meta.concrete_fields)
    return tuple(json.dumps(v, sort_keys=True) if isinstance(v, list | dict) else v for v in values)


def _verify_context(certificate: Certificate, withdrawn: bool) -> dict:
    if withdrawn:
        return {"certificate": certificate, "withdrawn": True, "withdrawn_holder": WITHDRAWN_HOLDER}
    credential = json.loads(certificate.credential)
    issuer = credential.get("issuer") if isinstance(credential.get("issuer"), dict) else {}
    return {
        "certificate": certificate,
        "report": services.certificate_verify(certificate),
        "credential": credential,
        "verify_url": services.verify_url(certificate.public_id),
        "issuer_name": issuer.get("name") or services.ISSUER_NAME,
        "issuer_origin": (issuer.get("url") or settings.SITE_URL).rstrip("/"),
        "issuer_did": issuer.get("id") or keys.issuer_did(),
        "status_list_url": services.status_list_url(),
        "suspension_list_url": services.status_list_url(services.SUSPENSION_LIST_SLUG),
        "verifier_filename": standalone.FILENAME,
        "verifier_requirements": " ".join(standalone.requirements()),
    }


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
