"""Bitstring Status List v1.0 (https://www.w3.org/TR/vc-bitstring-status-list/).

Bit `index` is bit (7 - index % 8) of byte index // 8: index 0 is the left-most
(most significant) bit of the first byte. The encoded list is the GZIP-compressed
bitstring in multibase base64url without padding ("u..."). No Django imports.
"""

from __future__ import annotations

import base64
import gzip
import zlib
from typing import Any

from certificates.signing import CREDENTIALS_V2_URL

STATUS_PURPOSE_REVOCATION = "revocation"

# The spec's minimum (16 KiB), so that one set bit does not single out a holder.
MIN_LIST_BITS = 131_072
MIN_LIST_BYTES = MIN_LIST_BITS // 8

# Refuse to inflate a hostile encodedList beyond this (a gzip bomb).
MAX_LIST_BYTES = 16 * 1024 * 1024


class StatusListError(ValueError):
    """An encoded list that cannot be decoded, is too short, or an index out of range."""


def new_bitstring(size_bits: int = MIN_LIST_BITS) -> bytearray:
    if size_bits < MIN_LIST_BITS or size_bits % 8:
        raise StatusListError(f"a status list needs a multiple of 8 bits, at least {MIN_LIST_BITS}")
    return bytearray(size_bits // 8)


def encode(bits: bytes | bytearray) -> str:
    """GZIP then multibase base64url (no padding), e.g. "uH4sI..."."""
    if len(bits) < MIN_LIST_BYTES:
        raise StatusListError(f"status list is {len(bits)} bytes, below {MIN_LIST_BYTES}")
    # mtime=0 keeps the encoding a pure function of the bits.
    compressed = gzip.compress(bytes(bits), mtime=0)
    return "u" + base64.urlsafe_b64encode(compressed).decode("ascii").rstrip("=")


def decode(encoded_list: str) -> bytearray:
    if not encoded_list.startswith("u"):
        raise StatusListError("encodedList must be multibase base64url (start with 'u')")
    body = encoded_list[1:]
    try:
        compressed = base64.b64decode(body + "=" * (-len(body) % 4), altchars=b"-_", validate=True)
        inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)  # gzip container
        bits = inflater.decompress(compressed, MAX_LIST_BYTES)
    except (ValueError, zlib.error) as exc:
        raise StatusListError(f"encodedList is not valid base64url GZIP data: {exc}") from exc
    if inflater.unconsumed_tail:
        raise StatusListError(f"status list inflates beyond {MAX_LIST_BYTES} bytes")
    if not inflater.eof:
        raise StatusListError("encodedList is not valid GZIP data: truncated")
    if len(bits) < MIN_LIST_BYTES:
        raise StatusListError(f"status list is {len(bits)} bytes, below {MIN_LIST_BYTES}")
    return bytearray(bits)


def _position(bits: bytes | bytearray, index: int) -> tuple[int, int]:
    if not 0 <= index < len(bits) * 8:
        raise StatusListError(f"status index {index} is outside a {len(bits) * 8}-bit list")
    return index // 8, 0x80 >> (index % 8)


def is_set(bits: bytes | bytearray, index: int) -> bool:
    byte, mask = _position(bits, index)
    return bool(bits[byte] & mask)


def set_bit(bits: bytearray, index: int, value: bool = True) -> None:
    byte, mask = _position(bits, index)
    if value:
        bits[byte] |= mask
    else:
        bits[byte] &= ~mask & 0xFF


def status_list_entry(
    *, status_list_url: str, index: int, status_purpose: str = STATUS_PURPOSE_REVOCATION
) -> dict[str, Any]:
    """The `credentialStatus` of a credential at `index` in the list at `status_list_url`."""
    if index < 0:
        raise StatusListError(f"status index {index} is negative")
    return {
        "id": f"{status_list_url}#{index}",
        "type": "BitstringStatusListEntry",
        "statusPurpose": status_purpose,
        "statusListIndex": str(index),
        "statusListCredential": status_list_url,
    }


def status_list_credential(
    *,
    status_list_url: str,
    issuer_did: str,
    bits: bytes | bytearray,
    valid_from: str,
    valid_until: str | None = None,
    status_purpose: str = STATUS_PURPOSE_REVOCATION,
) -> dict[str, Any]:
    """An unsigned BitstringStatusListCredential; sign it with `signing.sign`."""
    credential: dict[str, Any] = {
        "@context": [CREDENTIALS_V2_URL],
        "id": status_list_url,
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": issuer_did,
        "validFrom": valid_from,
        "credentialSubject": {
            "id": f"{status_list_url}#list",
            "type": "BitstringStatusList",
            "statusPurpose": status_purpose,
            "encodedList": encode(bits),
        },
    }
    if valid_until is not None:
        credential["validUntil"] = valid_until
    return credential
