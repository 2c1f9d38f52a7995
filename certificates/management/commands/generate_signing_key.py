from django.core.management.base import BaseCommand

from certificates import keys
from certificates.services import certificates_issue_pending


class Command(BaseCommand):
    help = (
        "Create a new issuer signing key (key-<n>.pem). Old public keys stay published. "
        "Certificates that were waiting for a key are issued right away."
    )
    # This command is the fix the signing-key check names: that check must not stop it.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser) -> None:
        parser.add_argument("--if-missing", action="store_true", help="do nothing when a key already exists")

    def handle(self, *args, if_missing: bool, **options) -> None:
        if if_missing and keys.key_files():
            self.stdout.write("A signing key already exists.")
        else:
            key_id, path = keys.generate_key()
            self.stdout.write(self.style.SUCCESS(f"Created signing key {key_id} at {path} (keep it secret)."))
        issued = certificates_issue_pending()
        if issued:
            self.stdout.write(self.style.SUCCESS(f"Issued {len(issued)} pending certificate(s)."))
