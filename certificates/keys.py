"""The issuer's identity (did:web) and signing keys.

The current private key comes from SHIPWRIGHT_SIGNING_KEY (or _FILE: a PEM or a
multibase `z3u2…` secret) with SHIPWRIGHT_SIGNING_KEY_ID, or else from the newest
`key-<n>.pem` in SHIPWRIGHT_SIGNING_KEY_DIR (`manage.py generate_signing_key`
writes one). Every key ever used is recorded (public half only) and stays in
did.json, so rotation never breaks old credentials. The private key is never
logged, rendered, or passed to a sandbox.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Count, Max, Subquery, Value

from . import signing
from .models import SigningKey

_KEY_FILE = re.compile(r"^key-(\d+)\.pem$")


def issuer_did() -> str:
    """did:web for the site origin (a port is percent-encoded, as the method says)."""
    parts = urlsplit(settings.SITE_URL)
    host = quote(parts.netloc, safe="")
    path = ":".join(quote(p, safe="") for p in parts.path.strip("/").split("/") if p)
    return f"did:web:{host}" + (f":{path}" if path else "")


GENERATE_KEY_COMMAND = "python manage.py generate_signing_key"


class SigningKeyUnavailable(ImproperlyConfigured):
    """No usable signing key. Certificates earned meanwhile wait as pending
    (certificates.services) and are issued once there is one."""


class NoSigningKey(SigningKeyUnavailable):
    """Neither the environment nor SHIPWRIGHT_SIGNING_KEY_DIR holds a key."""


@dataclass(frozen=True)
class CurrentKey:
    key_id: str
    private_key: Ed25519PrivateKey

    @property
    def verification_method(self) -> str:
        return f"{issuer_did()}#{self.key_id}"


def _from_environment() -> CurrentKey | None:
    raw = None
    if path := os.environ.get("SHIPWRIGHT_SIGNING_KEY_FILE"):
        try:
            raw = Path(path).read_text()
        except OSError as exc:
            raise SigningKeyUnavailable(f"SHIPWRIGHT_SIGNING_KEY_FILE {path} cannot be read: {exc}") from exc
    elif value := os.environ.get("SHIPWRIGHT_SIGNING_KEY"):
        raw = value
    if raw is None:
        return None
    key_id = os.environ.get("SHIPWRIGHT_SIGNING_KEY_ID", "")
    if not re.fullmatch(r"key-[A-Za-z0-9_-]{1,30}", key_id):
        raise SigningKeyUnavailable("SHIPWRIGHT_SIGNING_KEY_ID must look like 'key-1' when a key is given")
    try:
        return CurrentKey(key_id=key_id, private_key=signing.load_private_key(raw.strip()))
    except ValueError as exc:
        raise SigningKeyUnavailable(f"the signing key in the environment is not an Ed25519 key: {exc}") from exc


def key_files() -> list[tuple[int, Path]]:
    folder = Path(settings.SHIPWRIGHT_SIGNING_KEY_DIR)
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        if match := _KEY_FILE.match(path.name):
            found.append((int(match.group(1)), path))
    return sorted(found)


def load_current_key() -> CurrentKey:
    """The key new credentials are signed with, read from the environment or the
    key folder; touches no database (the system check calls it). Raises
    NoSigningKey or SigningKeyUnavailable with what is wrong."""
    key = _from_environment()
    if key is not None:
        return key
    files = key_files()
    if not files:
        raise NoSigningKey(
            f"No signing key in {settings.SHIPWRIGHT_SIGNING_KEY_DIR}: run `{GENERATE_KEY_COMMAND}` "
            "or set SHIPWRIGHT_SIGNING_KEY_FILE and SHIPWRIGHT_SIGNING_KEY_ID"
        )
    number, path = files[-1]
    try:
        return CurrentKey(key_id=f"key-{number}", private_key=signing.load_private_key_file(path))
    except (OSError, ValueError) as exc:
        raise SigningKeyUnavailable(f"the signing key {path} cannot be loaded: {exc}") from exc


def current_key() -> CurrentKey:
    """The key new credentials are signed with; registers its public half."""
    key = load_current_key()
    register(key.key_id, key.private_key)
    return key


def register(key_id: str, private_key: Ed25519PrivateKey) -> SigningKey:
    multibase = signing.public_key_multibase(private_key.public_key())
    row, created = SigningKey.objects.get_or_create(key_id=key_id, defaults={"public_key_multibase": multibase})
    if not created and row.public_key_multibase != multibase:
        raise SigningKeyUnavailable(
            f"signing key {key_id} does not match the public key published for that id; a rotated key needs a new id"
        )
    return row


def generate_key() -> tuple[str, Path]:
    """Write a new `key-<n>.pem` (n one past the highest used) and register it."""
    folder = Path(settings.SHIPWRIGHT_SIGNING_KEY_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    used = [number for number, _ in key_files()]
    used += [int(k[4:]) for k in SigningKey.objects.values_list("key_id", flat=True) if k[4:].isdigit()]
    number = max(used, default=0) + 1
    private_key = signing.generate_private_key()
    path = folder / f"key-{number}.pem"
    signing.save_private_key_file(private_key, path)
    register(f"key-{number}", private_key)
    return f"key-{number}", path


def keys_version_annotations() -> dict[str, Subquery]:
    """The version of the set of published keys (how many, and the newest id: rows
    are only ever added), as annotations for another model's query, so that a page
    reads it in the query it makes anyway (the verify page: the certificate's)."""
    keys = SigningKey.objects.order_by().annotate(every=Value(1)).values("every")
    return {
        "signing_keys_count": Subquery(keys.annotate(version=Count("pk")).values("version")),
        "signing_keys_newest": Subquery(keys.annotate(version=Max("pk")).values("version")),
    }


# The DID document as served, per process, under the version of the key set it was
# built from and the DID (SITE_URL). Only the newest version is kept.
_did_documents: dict[tuple[str, int, int | None], str] = {}


def did_document_json(version: tuple[int, int | None] | None = None) -> str:
    """The DID document as served.

    Memoized per process under the version of the set of keys in the database
    (`keys_version_annotations`; read here when not given), so every process serves
    a rotation made by another on its very next request, with no cache server.
    """
    if version is None:
        found = SigningKey.objects.aggregate(count=Count("pk"), newest=Max("pk"))
        version = (found["count"], found["newest"])
    key = (issuer_did(), *version)
    text = _did_documents.get(key)
    if text is None:
        # Built from the rows as they are now: at worst newer than `version`, and a
        # request that reads the newer version builds it again.
        text = json.dumps(did_document(), indent=2, sort_keys=True)
        _did_documents.clear()
        _did_documents[key] = text
    return text


def did_document() -> dict:
    did = issuer_did()
    keys = [
        (f"{did}#{row.key_id}", signing.public_key_from_multibase(row.public_key_multibase))
        for row in SigningKey.objects.all()
    ]
    return signing.did_document(did, keys)
