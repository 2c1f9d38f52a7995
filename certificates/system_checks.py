"""Django system checks for issuing certificates: a usable signing key.

Registered by CertificatesConfig.ready under the `shipwright` tag
(`python manage.py check --tag shipwright` runs only the platform's own checks;
the worker runs them at start). They read the environment and the key folder, never
the database, so they cost every command next to nothing.

A missing key is a Warning, not an Error: an Error would stop `migrate` and every
other command on a fresh clone before `generate_signing_key` could run, and nothing
is lost meanwhile (a certificate earned without a key waits as pending). A key that
is configured but cannot be used is an Error: someone asked for that key.

Only processes that sign are checked (SHIPWRIGHT_SIGNS_CERTIFICATES, on by default):
a grading worker runs learner code in sandboxes and must not hold the key at all
(it hands certificates to the signing worker's queue), so no key there is right.
"""

from __future__ import annotations

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning

from . import keys

TAG = "shipwright"
NO_KEY_MESSAGE = "No signing key: certificates cannot be signed (no SHIPWRIGHT_SIGNING_KEY and no key-<n>.pem in SHIPWRIGHT_SIGNING_KEY_DIR)."
NO_KEY_HINT = (
    f"Run `{keys.GENERATE_KEY_COMMAND}` (or set SHIPWRIGHT_SIGNING_KEY_FILE and SHIPWRIGHT_SIGNING_KEY_ID). "
    "Certificates earned meanwhile are pending and issued once a key exists."
)
BAD_KEY_HINT = (
    "Fix the key named above, or unset SHIPWRIGHT_SIGNING_KEY(_FILE) and run "
    f"`{keys.GENERATE_KEY_COMMAND}` for a new one. Certificates earned meanwhile are pending."
)


def check_signing_key(app_configs=None, **kwargs) -> list[CheckMessage]:
    if app_configs is not None and not any(config.label == "certificates" for config in app_configs):
        return []
    if not settings.SHIPWRIGHT_SIGNS_CERTIFICATES:
        return []
    try:
        keys.load_current_key()
    except keys.NoSigningKey:
        return [Warning(NO_KEY_MESSAGE, hint=NO_KEY_HINT, id="certificates.W001")]
    except keys.SigningKeyUnavailable as exc:
        return [Error(str(exc), hint=BAD_KEY_HINT, id="certificates.E001")]
    return []
