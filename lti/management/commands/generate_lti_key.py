from django.core.management.base import BaseCommand

from lti import keys


class Command(BaseCommand):
    help = (
        "Create a new LTI tool key (key-<n>.pem in SHIPWRIGHT_LTI_KEY_DIR), separate from the "
        "certificate signing key. Earlier public keys stay in the tool's JWKS."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--if-missing", action="store_true", help="do nothing when a key already exists")

    def handle(self, *args, if_missing: bool, **options) -> None:
        if if_missing and keys.key_files():
            self.stdout.write("An LTI tool key already exists.")
            return
        key_id, path = keys.generate_key()
        self.stdout.write(self.style.SUCCESS(f"Created LTI tool key {key_id} at {path} (keep it secret)."))
