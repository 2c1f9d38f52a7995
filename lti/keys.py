"""The tool's RSA key (LTI 1.3 signs with RS256), kept like the certificate key
(certificates/keys.py) but apart from it: a separate key with its own rotation.

The current private key comes from SHIPWRIGHT_LTI_KEY_FILE with SHIPWRIGHT_LTI_KEY_ID,
or else from the newest `key-<n>.pem` in SHIPWRIGHT_LTI_KEY_DIR (`manage.py
generate_lti_key` writes one). Every key ever used is recorded (public half only)
and stays in the tool's JWKS, so an LMS that cached the previous key keeps
verifying through a rotation. The private key is never logged or rendered.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from pylti1p3.registration import Registration

from .models import ToolKey

GENERATE_KEY_COMMAND = "python manage.py generate_lti_key"
_KEY_FILE = re.compile(r"^key-(\d+)\.pem$")


class ToolKeyUnavailable(ImproperlyConfigured):
    pass


@dataclass(frozen=True)
class CurrentKey:
    key_id: str
    private_pem: str
    public_pem: str

    @property
    def jwk(self) -> dict:
        """The public JWK; its `kid` is the RFC 7638 thumbprint, the one pylti1p3
        puts in the header of every JWT it signs with this key."""
        return dict(Registration.get_jwk(self.public_pem))


def _public_pem(private_pem: str) -> str:
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("not an RSA private key")
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def key_files() -> list[tuple[int, Path]]:
    folder = Path(settings.SHIPWRIGHT_LTI_KEY_DIR)
    if not folder.is_dir():
        return []
    return sorted((int(m.group(1)), p) for p in folder.iterdir() if (m := _KEY_FILE.match(p.name)))


def load_current_key() -> CurrentKey:
    """The key the tool signs with; touches no database. Raises ToolKeyUnavailable."""
    if path := os.environ.get("SHIPWRIGHT_LTI_KEY_FILE"):
        key_id = os.environ.get("SHIPWRIGHT_LTI_KEY_ID", "")
        if not re.fullmatch(r"key-[A-Za-z0-9_-]{1,30}", key_id):
            raise ToolKeyUnavailable("SHIPWRIGHT_LTI_KEY_ID must look like 'key-1' when SHIPWRIGHT_LTI_KEY_FILE is set")
        source = Path(path)
    else:
        files = key_files()
        if not files:
            raise ToolKeyUnavailable(
                f"No LTI tool key in {settings.SHIPWRIGHT_LTI_KEY_DIR}: run `{GENERATE_KEY_COMMAND}`"
            )
        number, source = files[-1]
        key_id = f"key-{number}"
    try:
        private_pem = source.read_text()
        return CurrentKey(key_id=key_id, private_pem=private_pem, public_pem=_public_pem(private_pem))
    except (OSError, ValueError) as exc:
        raise ToolKeyUnavailable(f"the LTI tool key {source} cannot be loaded: {exc}") from exc


def current_key() -> CurrentKey:
    key = load_current_key()
    register(key)
    return key


def register(key: CurrentKey) -> ToolKey:
    row, created = ToolKey.objects.get_or_create(key_id=key.key_id, defaults={"public_jwk": key.jwk})
    if not created and row.public_jwk != key.jwk:
        raise ToolKeyUnavailable(f"LTI key {key.key_id} does not match the key published under that id")
    return row


def generate_key() -> tuple[str, Path]:
    """Write a new `key-<n>.pem` (n one past the highest used) and publish it."""
    folder = Path(settings.SHIPWRIGHT_LTI_KEY_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    used = [n for n, _ in key_files()]
    used += [int(k[4:]) for k in ToolKey.objects.values_list("key_id", flat=True) if k[4:].isdigit()]
    number = max(used, default=0) + 1
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    path = folder / f"key-{number}.pem"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(pem)
    register(CurrentKey(key_id=f"key-{number}", private_pem=pem, public_pem=_public_pem(pem)))
    return f"key-{number}", path


def jwks() -> dict:
    """Every tool key ever used (the current one registered first if it is new)."""
    try:
        current_key()
    except ToolKeyUnavailable:
        pass
    return {"keys": [row.public_jwk for row in ToolKey.objects.all()]}
