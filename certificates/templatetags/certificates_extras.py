from django import template

register = template.Library()


@register.filter
def get_item(mapping, key):
    return mapping.get(key) if hasattr(mapping, "get") else None


@register.inclusion_tag("certificates/_pending.html")
def pending_certificates(user) -> dict:
    """Certificates `user` earned that wait for a signing key: said, not hidden."""
    from certificates.models import PendingCertificate
    from certificates.services import CERTIFICATE_PENDING_TEXT

    if not getattr(user, "is_authenticated", False):
        return {"pending": []}
    rows = PendingCertificate.objects.filter(user=user).select_related("course")
    return {"pending": [CERTIFICATE_PENDING_TEXT.format(course=row.course.title) for row in rows]}


@register.simple_tag
def dashboard_certificates(user) -> list[dict]:
    """The dashboard's certificates of `user`, each with its LinkedIn link; the
    dashboard (courses, below certificates) loads this tag instead of importing us."""
    from certificates.models import Certificate
    from certificates.views import linkedin_url

    if not getattr(user, "is_authenticated", False):
        return []
    return [
        {"certificate": certificate, "linkedin_url": linkedin_url(certificate)}
        for certificate in Certificate.objects.filter(user=user).select_related("course")
    ]
