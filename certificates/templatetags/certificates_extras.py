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
