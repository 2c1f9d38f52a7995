"""Data Integrity proofs with the `eddsa-rdfc-2022` cryptosuite, and Multikey keys.

Follows W3C vc-di-eddsa (Data Integrity EdDSA Cryptosuites v1.0), section
"eddsa-rdfc-2022": the signature covers SHA-256(canonical proof configuration)
followed by SHA-256(canonical unsecured document), both canonicalized with
RDFC-1.0 (URDNA2015) into N-Quads.

JSON-LD contexts are served only from the copies pinned in `certificates/contexts/`;
no URL is ever fetched. Expansion is strict: a property or type that the contexts do
not define is an error rather than silently dropped, because a dropped property is
shown to people but not covered by the signature.

No Django imports: this module must work from `python -m certificates.verifier` and
from the standalone verifier (certificates/standalone.py).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from cachetools import LRUCache
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from pyld.context_resolver import ContextResolver
from pyld.jsonld import JsonLdError, JsonLdProcessor

CREDENTIALS_V2_URL = "https://www.w3.org/ns/credentials/v2"
CREDENTIALS_EXAMPLES_V2_URL = "https://www.w3.org/ns/credentials/examples/v2"
OPEN_BADGES_V3_URL = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"

DID_V1_URL = "https://www.w3.org/ns/did/v1"
MULTIKEY_V1_URL = "https://w3id.org/security/multikey/v1"

PROOF_TYPE = "DataIntegrityProof"
CRYPTOSUITE = "eddsa-rdfc-2022"
PROOF_PURPOSE = "assertionMethod"

# Read as package resources, so they load from the standalone verifier's zip too.
_CONTEXTS_DIR = resources.files("certificates") / "contexts"
PINNED_CONTEXTS: dict[str, str] = {
    CREDENTIALS_V2_URL: "credentials-v2.jsonld",
    CREDENTIALS_EXAMPLES_V2_URL: "credentials-examples-v2.jsonld",
    OPEN_BADGES_V3_URL: "ob-v3p0-context-3.0.3.json",
}

# Multicodec varint prefixes (https://github.com/multiformats/multicodec).
_ED25519_PUB_PREFIX = b"\xed\x01"
_ED25519_PRIV_PREFIX = b"\x80\x26"
_BASE58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


class UnknownContextError(ValueError):
    """A JSON-LD document referenced a context that is not pinned."""


class CanonicalizationError(ValueError):
    """The document cannot be canonicalized strictly (undefined term, bad IRI, ...)."""


class ProofError(ValueError):
    """The document has no usable `eddsa-rdfc-2022` proof."""


# --- JSON-LD ---------------------------------------------------------------


@cache
def _pinned_context(url: str) -> dict[str, Any]:
    return json.loads((_CONTEXTS_DIR / PINNED_CONTEXTS[url]).read_text(encoding="utf-8"))


def document_loader(url: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """pyld document loader that serves the pinned contexts and nothing else."""
    if url not in PINNED_CONTEXTS:
        raise UnknownContextError(
            f"JSON-LD context {url!r} is not pinned in certificates/contexts/; "
            f"refusing to fetch it (pinned: {', '.join(sorted(PINNED_CONTEXTS))})"
        )
    return {
        "contentType": "application/ld+json",
        "contextUrl": None,
        "documentUrl": url,
        # pyld must never be able to mutate our cached copy.
        "document": copy.deepcopy(_pinned_context(url)),
    }


# Our own resolved-context cache: pyld's default one is shared process-wide, so a
# context that some other loader resolved for the same URL could otherwise leak in.
# (cachetools is a dependency of PyLD.)
_RESOLVED_CONTEXTS: LRUCache = LRUCache(maxsize=32)


def _processing_options() -> dict[str, Any]:
    return {
        "documentLoader": document_loader,
        "contextResolver": ContextResolver(_RESOLVED_CONTEXTS, document_loader),
        # No base IRI: pyld would resolve relative IRIs against http://example.org/base/
        # for an empty base; left relative, _check_expanded rejects them.
        "base": None,
    }


def _raise_dropped(expanded_property: str | None) -> None:
    raise CanonicalizationError(
        f"property {expanded_property!r} is not defined by the document's @context "
        "and would be silently dropped from the signed data"
    )


def _is_absolute_iri(value: str) -> bool:
    scheme, sep, _ = value.partition(":")
    return bool(sep) and scheme[:1].isalpha() and all(c.isalnum() or c in "+-." for c in scheme)


def _check_expanded(node: Any) -> None:
    """Reject what JSON-LD would drop quietly when producing RDF (relative IRIs)."""
    if isinstance(node, list):
        for item in node:
            _check_expanded(item)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if key == "@id" and not (value.startswith("_:") or _is_absolute_iri(value)):
            raise CanonicalizationError(f"relative @id {value!r} is not allowed")
        if key == "@type" and "@value" not in node:
            for type_iri in value:
                if not (type_iri.startswith("_:") or _is_absolute_iri(type_iri)):
                    raise CanonicalizationError(f"type {type_iri!r} is not defined by the document's @context")
        elif key == "@type" and value != "@json" and not _is_absolute_iri(value):
            raise CanonicalizationError(f"relative datatype {value!r} is not allowed")
        elif isinstance(value, (list, dict)) and key != "@value":
            _check_expanded(value)


def expand(document: dict[str, Any]) -> list[Any]:
    """Strict JSON-LD expansion with the pinned contexts only."""
    processor = JsonLdProcessor(on_property_dropped=_raise_dropped)
    try:
        expanded = processor.expand(document, _processing_options())
    except JsonLdError as exc:
        raise _unwrap(exc) from exc
    except (UnknownContextError, CanonicalizationError):
        raise
    except (ValueError, TypeError) as exc:  # pyld lets some bad input through unwrapped
        raise CanonicalizationError(f"not valid JSON-LD: {exc}") from exc
    _check_expanded(expanded)
    return expanded


def _unwrap(exc: JsonLdError) -> Exception:
    # pyld wraps our loader's and handler's errors several levels deep; surface them.
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, (UnknownContextError, CanonicalizationError)):
            return cause
        cause = cause.__cause__ or cause.__context__
    return CanonicalizationError(str(exc))


def canonicalize(document: dict[str, Any]) -> str:
    """RDFC-1.0 (URDNA2015) canonical N-Quads of a JSON-LD document."""
    expanded = expand(document)
    options = _processing_options() | {
        "algorithm": "URDNA2015",
        "format": "application/n-quads",
    }
    try:
        return JsonLdProcessor().normalize(expanded, options)
    except JsonLdError as exc:
        raise _unwrap(exc) from exc
    except (ValueError, TypeError) as exc:
        raise CanonicalizationError(f"not valid JSON-LD: {exc}") from exc


# --- Proofs ----------------------------------------------------------------


def _hash_data(document: dict[str, Any], proof_config: dict[str, Any]) -> bytes:
    proof_config_hash = hashlib.sha256(canonicalize(proof_config).encode()).digest()
    document_hash = hashlib.sha256(canonicalize(document).encode()).digest()
    return proof_config_hash + document_hash


def _proof_config(document: dict[str, Any], proof_options: dict[str, Any]) -> dict[str, Any]:
    config = {k: v for k, v in proof_options.items() if k != "proofValue"}
    # vc-di-eddsa: the proof configuration carries the unsecured document's @context.
    config["@context"] = document["@context"]
    return config


def sign(
    document: dict[str, Any],
    *,
    private_key: Ed25519PrivateKey,
    verification_method: str,
    created: str,
) -> dict[str, Any]:
    """Return a copy of `document` with an `eddsa-rdfc-2022` DataIntegrityProof.

    `created` is an XML Schema dateTime such as "2025-01-31T12:00:00Z". Any
    existing `proof` on the input is replaced.
    """
    unsecured = {k: v for k, v in document.items() if k != "proof"}
    if "@context" not in unsecured:
        raise CanonicalizationError("document has no @context")
    proof = {
        "type": PROOF_TYPE,
        "cryptosuite": CRYPTOSUITE,
        "created": created,
        "verificationMethod": verification_method,
        "proofPurpose": PROOF_PURPOSE,
    }
    signature = private_key.sign(_hash_data(unsecured, _proof_config(unsecured, proof)))
    proof["proofValue"] = "z" + base58btc_encode(signature)
    return copy.deepcopy(unsecured) | {"proof": proof}


def extract_proof(document: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a secured document into (unsecured document, its one eddsa-rdfc-2022 proof)."""
    proof = document.get("proof")
    if isinstance(proof, list):
        if len(proof) != 1:
            raise ProofError(f"expected exactly one proof, found {len(proof)}")
        proof = proof[0]
    if not isinstance(proof, dict):
        raise ProofError("document has no proof")
    if proof.get("type") != PROOF_TYPE or proof.get("cryptosuite") != CRYPTOSUITE:
        raise ProofError(
            f"unsupported proof: type {proof.get('type')!r}, "
            f"cryptosuite {proof.get('cryptosuite')!r} (expected {PROOF_TYPE} {CRYPTOSUITE})"
        )
    for field in ("proofValue", "verificationMethod", "proofPurpose"):
        if not isinstance(proof.get(field), str):
            raise ProofError(f"proof has no {field}")
    if "@context" not in document:
        raise ProofError("document has no @context")
    unsecured = {k: v for k, v in document.items() if k != "proof"}
    return unsecured, proof


def verify(document: dict[str, Any], *, public_key: Ed25519PublicKey) -> bool:
    """True when the document's eddsa-rdfc-2022 proof verifies under `public_key`.

    Only the cryptography is checked here; whether the key belongs to the issuer is
    the verifier's job (see certificates.verifier).
    """
    try:
        unsecured, proof = extract_proof(document)
        proof_value = proof["proofValue"]
        if not proof_value.startswith("z"):
            return False
        signature = base58btc_decode(proof_value[1:])
        if "@context" in proof and proof["@context"] != unsecured["@context"]:
            return False
        hash_data = _hash_data(unsecured, _proof_config(unsecured, proof))
        public_key.verify(signature, hash_data)
    except (InvalidSignature, ProofError, CanonicalizationError, UnknownContextError, ValueError):
        return False
    return True


# --- base58btc and Multikey --------------------------------------------------


def base58btc_encode(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    encoded = ""
    while number:
        number, remainder = divmod(number, 58)
        encoded = _BASE58_ALPHABET[remainder] + encoded
    leading_zeros = len(data) - len(data.lstrip(b"\0"))
    return "1" * leading_zeros + encoded


def base58btc_decode(text: str) -> bytes:
    number = 0
    for char in text:
        index = _BASE58_ALPHABET.find(char)
        if index < 0:
            raise ValueError(f"invalid base58btc character {char!r}")
        number = number * 58 + index
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    leading_zeros = len(text) - len(text.lstrip("1"))
    return b"\0" * leading_zeros + body


def _multibase_decode(value: str, prefix: bytes, what: str) -> bytes:
    if not value.startswith("z"):
        raise ValueError(f"{what} must be multibase base58btc (start with 'z')")
    raw = base58btc_decode(value[1:])
    if not raw.startswith(prefix) or len(raw) != len(prefix) + 32:
        raise ValueError(f"{what} is not an Ed25519 Multikey (multicodec 0x{prefix.hex()})")
    return raw[len(prefix) :]


def generate_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def public_key_multibase(public_key: Ed25519PublicKey) -> str:
    """Multikey `publicKeyMultibase`: "z6Mk..."."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "z" + base58btc_encode(_ED25519_PUB_PREFIX + raw)


def public_key_from_multibase(value: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(_multibase_decode(value, _ED25519_PUB_PREFIX, "publicKeyMultibase"))


def private_key_multibase(private_key: Ed25519PrivateKey) -> str:
    """Multikey `secretKeyMultibase`: "z3u2..." (the 32-byte seed, multicodec 0x8026)."""
    raw = private_key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    return "z" + base58btc_encode(_ED25519_PRIV_PREFIX + raw)


def private_key_from_multibase(value: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(_multibase_decode(value, _ED25519_PRIV_PREFIX, "secretKeyMultibase"))


def private_key_to_pem(private_key: Ed25519PrivateKey) -> bytes:
    """Unencrypted PKCS#8 PEM; protect the file, not the bytes."""
    return private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_private_key(data: str | bytes) -> Ed25519PrivateKey:
    """Load an Ed25519 private key from PKCS#8 PEM or a "z3u2..." multibase string."""
    text = data.decode("ascii") if isinstance(data, bytes) else data
    text = text.strip()
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_private_key(text.encode("ascii"), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("PEM key is not an Ed25519 private key")
        return key
    return private_key_from_multibase(text)


def load_private_key_file(path: str | Path) -> Ed25519PrivateKey:
    return load_private_key(Path(path).read_bytes())


def save_private_key_file(private_key: Ed25519PrivateKey, path: str | Path) -> None:
    """Write the key as PEM, readable by the owner only, refusing to overwrite."""
    target = Path(path)
    with target.open("xb") as handle:
        target.chmod(0o600)
        handle.write(private_key_to_pem(private_key))


# --- DID documents -----------------------------------------------------------


def did_document(did: str, keys: Iterable[tuple[str, Ed25519PublicKey]]) -> dict[str, Any]:
    """A DID document listing every key as a Multikey usable for assertionMethod.

    `keys` are (verification method id, public key) pairs, ids such as
    "did:web:example.com#key-1" (a bare "#key-1" fragment is prefixed with the DID).
    """
    methods = []
    for key_id, public_key in keys:
        full_id = did + key_id if key_id.startswith("#") else key_id
        if not full_id.startswith(did + "#"):
            raise ValueError(f"key id {key_id!r} is not a fragment of {did!r}")
        methods.append(
            {
                "id": full_id,
                "type": "Multikey",
                "controller": did,
                "publicKeyMultibase": public_key_multibase(public_key),
            }
        )
    return {
        "@context": [DID_V1_URL, MULTIKEY_V1_URL],
        "id": did,
        "verificationMethod": methods,
        "assertionMethod": [method["id"] for method in methods],
    }
