from django.core.management.base import BaseCommand, CommandError

from certificates import keys
from certificates.models import Certificate
from certificates.services import certificate_revoke


class Command(BaseCommand):
    help = "Revoke a certificate: the verify page says revoked, and its status list bit is set."

    def add_arguments(self, parser) -> None:
        parser.add_argument("id", help="the certificate's public id (as in /verify/<id>/)")
        parser.add_argument("--reason", required=True, help="shown on the verify page")

    def handle(self, *args, id: str, reason: str, **options) -> None:
        certificate = Certificate.objects.filter(public_id=id).first()
        if certificate is None:
            raise CommandError(f"no certificate with id {id!r}")
        if not reason.strip():
            raise CommandError("--reason must not be empty")
        try:
            certificate = certificate_revoke(certificate=certificate, reason=reason, by="manage.py revoke_certificate")
        except keys.SigningKeyUnavailable as exc:
            # The status list must be re-signed; nothing was changed.
            raise CommandError(f"not revoked: {exc}") from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Revoked {certificate.public_id} on {certificate.status_changed_at:%Y-%m-%d}: {certificate.status_reason}"
            )
        )
