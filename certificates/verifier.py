"""Verify a Shipwright Open Badges credential against the issuer's DID document.

Library: `verify_credential(...)` returns a `VerificationReport` of ordered, named
checks. CLI, runnable without Django:

    python -m certificates.verifier credential.json --did did.json \\
        [--status-list FILE_OR_URL] [--suspension-list FILE_OR_URL] [--offline]

Exit status: 0 when every check that ran passed, 1 when one failed, 2 for usage
errors or unreadable files. The network is used only to fetch a status list given
as an http(s) URL, and never with --offline.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from certificates import signing
from certificates import status_list as bitstring

SIGNATURE_VALID = "signature valid"
KEY_LISTED = "key listed by the issuer"
ISSUER_MATCHES = "issuer matches the key's controller"
NOT_REVOKED = "not revoked"
NOT_SUSPENDED = "not suspended"
DATES_VALID = "dates valid"

PURPOSE_REVOCATION = "revocation"
PURPOSE_SUSPENSION = "suspension"
STATUS_SET = {PURPOSE_REVOCATION: "revoked", PURPOSE_SUSPENSION: "suspended"}

REVOCATION_NOT_CHECKED = "revocation status not checked (offline)"
SUSPENSION_NOT_CHECKED = "suspension status not checked (offline)"
VERDICT_VALID = "valid"
VERDICT_VALID_UNCHECKED_REVOCATION = f"signature valid; {REVOCATION_NOT_CHECKED}"
VERDICT_INVALID = "NOT VALID"

FETCH_TIMEOUT_S = 5.0
MAX_STATUS_LIST_RESPONSE_BYTES = 4 * 1024 * 1024


class CheckStatus(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    NOT_CHECKED = "not checked"


@dataclass(frozen=True)
class Check:
    name: str
    status: CheckStatus
    message: str

    @property
    def passed(self) -> bool:
        return self.status is CheckStatus.PASSED


@dataclass(frozen=True)
class VerificationReport:
    checks: tuple[Check, ...]

    def __getitem__(self, name: str) -> Check:
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(name)

    @property
    def failed(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.status is CheckStatus.FAILED)

    @property
    def ok(self) -> bool:
        """True when no check failed (some may not have run)."""
        return not self.failed

    @property
    def fully_verified(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def verdict(self) -> str:
        if self.failed:
            return f"{VERDICT_INVALID}: " + "; ".join(f"{c.name}: {c.message}" for c in self.failed)
        if self.fully_verified:
            return VERDICT_VALID
        # Only the status checks can be left unchecked once the signature has verified.
        unchecked = [c.name for c in self.checks if c.status is CheckStatus.NOT_CHECKED]
        if unchecked == [NOT_REVOKED]:
            return VERDICT_VALID_UNCHECKED_REVOCATION
        texts = {NOT_REVOKED: REVOCATION_NOT_CHECKED, NOT_SUSPENDED: SUSPENSION_NOT_CHECKED}
        return "signature valid; " + "; ".join(texts.get(name, f"{name}: not checked") for name in unchecked)


class StatusListUnavailable(Exception):
    """The status list could not be fetched (network, HTTP error, not JSON)."""


# --- helpers -------------------------------------------------------------------


def _passed(name: str, message: str) -> Check:
    return Check(name, CheckStatus.PASSED, message)


def _failed(name: str, message: str) -> Check:
    return Check(name, CheckStatus.FAILED, message)


def _not_checked(name: str, message: str) -> Check:
    return Check(name, CheckStatus.NOT_CHECKED, message)


def _issuer_id(document: dict[str, Any]) -> str | None:
    issuer = document.get("issuer")
    if isinstance(issuer, dict):
        issuer = issuer.get("id")
    return issuer if isinstance(issuer, str) else None


def _as_list(value: Any) -> list[Any]:
    """A JSON-LD value as a list (a lone value stands for a one-item set)."""
    if isinstance(value, list):
        return value
    return [value] if isinstance(value, (dict, str)) else []


def _absolute(reference: str, did: str) -> str:
    return did + reference if reference.startswith("#") else reference


def _find_method(did_document: dict[str, Any], method_id: str) -> dict[str, Any] | None:
    raw_id = did_document.get("id")
    did = raw_id if isinstance(raw_id, str) else ""
    candidates = _as_list(did_document.get("verificationMethod"))
    # A method may also be embedded directly under assertionMethod.
    candidates += [m for m in _as_list(did_document.get("assertionMethod")) if isinstance(m, dict)]
    for method in candidates:
        if isinstance(method, dict) and _absolute(str(method.get("id", "")), did) == method_id:
            return method
    return None


def _assertion_method_ids(did_document: dict[str, Any]) -> set[str]:
    raw_id = did_document.get("id")
    did = raw_id if isinstance(raw_id, str) else ""
    ids = set()
    for entry in _as_list(did_document.get("assertionMethod")):
        reference = entry.get("id") if isinstance(entry, dict) else entry
        if isinstance(reference, str):
            ids.add(_absolute(reference, did))
    return ids


def _parse_datetime(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    # An XML Schema dateTime without a zone is read as UTC rather than local time.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _verify_signed_by_issuer(
    document: dict[str, Any], did_document: dict[str, Any]
) -> tuple[bool, str, dict[str, Any] | None]:
    """(signature verifies, message, the proof's verification method if found)."""
    try:
        _, proof = signing.extract_proof(document)
    except signing.ProofError as exc:
        return False, str(exc), None
    if proof["proofPurpose"] != signing.PROOF_PURPOSE:
        return False, f"proofPurpose is {proof['proofPurpose']!r}, not assertionMethod", None
    method_id = proof["verificationMethod"]
    method = _find_method(did_document, method_id)
    if method is None:
        return False, f"key {method_id} is not in the issuer's DID document", None
    try:
        public_key = signing.public_key_from_multibase(str(method.get("publicKeyMultibase")))
    except ValueError as exc:
        return False, f"key {method_id}: {exc}", method
    try:
        signing.canonicalize({k: v for k, v in document.items() if k != "proof"})
    except (signing.CanonicalizationError, signing.UnknownContextError) as exc:
        return False, f"cannot canonicalize the credential: {exc}", method
    if not signing.verify(document, public_key=public_key):
        return False, f"the proof does not verify with key {method_id}", method
    return True, f"eddsa-rdfc-2022 proof verifies with key {method_id}", method


# --- checks ----------------------------------------------------------------------


def _check_key_listed(proof_method_id: str | None, did_document: dict[str, Any]) -> Check:
    if proof_method_id is None:
        return _failed(KEY_LISTED, "the credential has no proof verificationMethod")
    if proof_method_id in _assertion_method_ids(did_document):
        return _passed(KEY_LISTED, f"{proof_method_id} is an assertionMethod of the issuer")
    return _failed(KEY_LISTED, f"{proof_method_id} is not an assertionMethod of {did_document.get('id')}")


def _check_issuer_matches(
    credential: dict[str, Any],
    did_document: dict[str, Any],
    proof_method_id: str | None,
    method: dict[str, Any] | None,
) -> Check:
    issuer = _issuer_id(credential)
    did = did_document.get("id")
    if issuer is None:
        return _failed(ISSUER_MATCHES, "the credential has no issuer id")
    if issuer != did:
        return _failed(ISSUER_MATCHES, f"issuer {issuer} is not the DID document's id {did}")
    if proof_method_id is None or not proof_method_id.startswith(issuer + "#"):
        return _failed(ISSUER_MATCHES, f"key {proof_method_id} is not a key of {issuer}")
    if method is None:
        return _failed(ISSUER_MATCHES, f"key {proof_method_id} is not in the DID document")
    if method.get("controller") != issuer:
        return _failed(
            ISSUER_MATCHES,
            f"key {proof_method_id} is controlled by {method.get('controller')}, not {issuer}",
        )
    return _passed(ISSUER_MATCHES, f"issuer {issuer} controls key {proof_method_id}")


def _check_dates(document: dict[str, Any], now: datetime, what: str = "credential") -> Check:
    try:
        valid_from = document.get("validFrom")
        valid_until = document.get("validUntil")
        if valid_from is not None and _parse_datetime(valid_from) > now:
            return _failed(DATES_VALID, f"the {what} is not valid before {valid_from}")
        if valid_until is not None and _parse_datetime(valid_until) <= now:
            return _failed(DATES_VALID, f"the {what} expired at {valid_until}")
    except (TypeError, ValueError) as exc:
        return _failed(DATES_VALID, f"the {what} has an unreadable date: {exc}")
    span = f"from {valid_from}" if valid_from else "with no start date"
    span += f" until {valid_until}" if valid_until else ", no expiry"
    return _passed(DATES_VALID, f"valid {span}")


def _status_entry(credential: dict[str, Any], purpose: str) -> dict[str, Any] | None:
    """The credential's one BitstringStatusListEntry for `purpose`: `credentialStatus`
    is one entry (then it is the revocation entry, whatever it says: the purpose is
    checked against the list's) or a list of entries."""
    status = credential.get("credentialStatus")
    if isinstance(status, dict):
        return status if purpose == PURPOSE_REVOCATION or status.get("statusPurpose") == purpose else None
    matching = [e for e in _as_list(status) if isinstance(e, dict) and e.get("statusPurpose") == purpose]
    return matching[0] if len(matching) == 1 else None


def _suspension_entry(credential: dict[str, Any], status_list_credential: dict[str, Any]) -> dict[str, Any] | None:
    """The credential's suspension entry, or else the one Shipwright's issuer implies:
    its credentials carry one revocation entry (the published contract), and the
    issuer's suspension list uses the same index. The list given must then be signed
    by the credential's issuer, which `_check_status` requires anyway."""
    entry = _status_entry(credential, PURPOSE_SUSPENSION)
    if entry is not None:
        return entry
    revocation = _status_entry(credential, PURPOSE_REVOCATION)
    if revocation is None or "statusListIndex" not in revocation:
        return None
    return {
        "type": "BitstringStatusListEntry",
        "statusPurpose": PURPOSE_SUSPENSION,
        "statusListIndex": revocation["statusListIndex"],
        "statusListCredential": status_list_credential.get("id"),
    }


def _check_status(
    name: str,
    purpose: str,
    entry: dict[str, Any] | None,
    credential: dict[str, Any],
    did_document: dict[str, Any],
    status_list_credential: dict[str, Any],
    now: datetime,
) -> Check:
    if not isinstance(entry, dict) or entry.get("type") != "BitstringStatusListEntry":
        return _failed(name, f"no single BitstringStatusListEntry for {purpose}")
    list_url = entry.get("statusListCredential")
    if status_list_credential.get("id") != list_url:
        return _failed(
            name,
            f"the status list given is {status_list_credential.get('id')}, but the credential points to {list_url}",
        )
    signed, message, _ = _verify_signed_by_issuer(status_list_credential, did_document)
    if not signed:
        return _failed(name, f"status list signature: {message}")
    _, proof = signing.extract_proof(status_list_credential)
    if _issuer_id(status_list_credential) != _issuer_id(credential) or (
        proof["verificationMethod"] not in _assertion_method_ids(did_document)
    ):
        return _failed(name, "the status list was not issued by the credential's issuer")
    list_dates = _check_dates(status_list_credential, now, what="status list")
    if not list_dates.passed:
        return _failed(name, list_dates.message)
    types = status_list_credential.get("type") or []
    subject = status_list_credential.get("credentialSubject")
    if "BitstringStatusListCredential" not in types or not isinstance(subject, dict):
        return _failed(name, "the status list is not a BitstringStatusListCredential")
    if subject.get("statusPurpose") != entry.get("statusPurpose"):
        return _failed(
            name,
            f"the status list's purpose is {subject.get('statusPurpose')!r}, not {entry.get('statusPurpose')!r}",
        )
    try:
        index = int(str(entry.get("statusListIndex")))
        is_set = bitstring.is_set(bitstring.decode(str(subject.get("encodedList"))), index)
    except (ValueError, bitstring.StatusListError) as exc:
        return _failed(name, f"cannot read the status list: {exc}")
    if is_set:
        return _failed(name, f"{STATUS_SET[purpose]} (bit {index} of {list_url} is set)")
    return _passed(name, f"bit {index} of the signed {purpose} list {list_url} is clear")


def _status_check(
    name: str,
    purpose: str,
    entry: dict[str, Any] | None,
    credential: dict[str, Any],
    did_document: dict[str, Any],
    status_list: dict[str, Any] | Literal["fetch"] | None,
    now: datetime,
) -> Check:
    not_checked = REVOCATION_NOT_CHECKED if purpose == PURPOSE_REVOCATION else SUSPENSION_NOT_CHECKED
    if status_list is None:
        return _not_checked(name, not_checked)
    if status_list == "fetch":
        url = entry.get("statusListCredential") if isinstance(entry, dict) else None
        try:
            status_list = fetch_status_list(str(url))
        except StatusListUnavailable as exc:
            return _not_checked(name, f"{not_checked}: {exc}")
    if not isinstance(status_list, dict):
        return _failed(name, "the status list is not a JSON object")
    return _check_status(name, purpose, entry, credential, did_document, status_list, now)


# urlopen's default opener also speaks file:// and ftp://, and follows redirects to ftp.
_HTTP_ONLY_OPENER = urllib.request.OpenerDirector()
for _handler in (
    urllib.request.ProxyHandler(),
    urllib.request.HTTPHandler(),
    urllib.request.HTTPSHandler(),
    urllib.request.HTTPRedirectHandler(),
    urllib.request.HTTPDefaultErrorHandler(),
    urllib.request.HTTPErrorProcessor(),
):
    _HTTP_ONLY_OPENER.add_handler(_handler)


def fetch_status_list(url: str, *, timeout: float = FETCH_TIMEOUT_S) -> dict[str, Any]:
    """GET a status list credential over http(s); raise StatusListUnavailable."""
    if not url.startswith(("https://", "http://")):
        raise StatusListUnavailable(f"not an http(s) URL: {url!r}")
    request = urllib.request.Request(url, headers={"Accept": "application/vc+ld+json, application/json"})
    try:
        with _HTTP_ONLY_OPENER.open(request, timeout=timeout) as response:
            body = response.read(MAX_STATUS_LIST_RESPONSE_BYTES + 1)
    except (OSError, ValueError) as exc:  # URLError, HTTPError and timeouts are OSErrors
        raise StatusListUnavailable(f"could not fetch {url}: {exc}") from exc
    if len(body) > MAX_STATUS_LIST_RESPONSE_BYTES:
        raise StatusListUnavailable(f"{url} is larger than {MAX_STATUS_LIST_RESPONSE_BYTES} bytes")
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise StatusListUnavailable(f"{url} is not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise StatusListUnavailable(f"{url} is not a JSON object")
    return document


def verify_credential(
    credential: dict[str, Any],
    did_document: dict[str, Any],
    *,
    now: datetime | None = None,
    status_list: dict[str, Any] | Literal["fetch"] | None = None,
    suspension_list: dict[str, Any] | Literal["fetch"] | None = None,
) -> VerificationReport:
    """Run every check on `credential`, in a fixed order; never raises for bad input.

    `status_list` is the signed revocation status list credential, or "fetch" to GET
    the credential's `statusListCredential` URL, or None to leave revocation
    unchecked. `suspension_list` is the issuer's signed suspension list (or "fetch",
    for a credential with its own suspension entry); without it, and without a
    suspension entry in the credential, no suspension check is made.
    """
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    if not isinstance(credential, dict) or not isinstance(did_document, dict):
        raise TypeError("credential and did_document must be JSON objects")

    signed, message, method = _verify_signed_by_issuer(credential, did_document)
    proof = credential.get("proof")
    proof_method_id = proof.get("verificationMethod") if isinstance(proof, dict) else None
    if not isinstance(proof_method_id, str):
        proof_method_id = None
    checks = [
        _passed(SIGNATURE_VALID, message) if signed else _failed(SIGNATURE_VALID, message),
        _check_key_listed(proof_method_id, did_document),
        _check_issuer_matches(credential, did_document, proof_method_id, method),
    ]

    if credential.get("credentialStatus") is None:
        checks.append(_passed(NOT_REVOKED, "the credential has no status entry, so it cannot be revoked"))
    else:
        entry = _status_entry(credential, PURPOSE_REVOCATION)
        checks.append(_status_check(NOT_REVOKED, PURPOSE_REVOCATION, entry, credential, did_document, status_list, now))
        suspension = _status_entry(credential, PURPOSE_SUSPENSION)
        if isinstance(suspension_list, dict):
            suspension = _suspension_entry(credential, suspension_list)
        if suspension is not None or suspension_list is not None:
            checks.append(
                _status_check(
                    NOT_SUSPENDED, PURPOSE_SUSPENSION, suspension, credential, did_document, suspension_list, now
                )
            )

    checks.append(_check_dates(credential, now))
    return VerificationReport(tuple(checks))


# --- CLI -------------------------------------------------------------------------


class _UsageError(Exception):
    pass


def _read_json(path: str, what: str) -> dict[str, Any]:
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise _UsageError(f"cannot read {what} {path}: {exc}") from exc
    if not isinstance(document, dict):
        raise _UsageError(f"{what} {path} is not a JSON object")
    return document


def _load_status_list(source: str | None, offline: bool) -> dict[str, Any] | None:
    if not source:
        return None
    if not source.startswith(("http://", "https://")):
        return _read_json(source, "status list")
    if offline:
        return None
    try:
        return fetch_status_list(source)
    except StatusListUnavailable as exc:
        print(f"warning: {exc}", file=sys.stderr)
        return None


def main(argv: Sequence[str] | None = None, *, prog: str = "python -m certificates.verifier") -> int:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Verify an Open Badges 3.0 credential signed with eddsa-rdfc-2022.",
    )
    parser.add_argument("credential", help="the credential JSON file")
    parser.add_argument("--did", required=True, help="the issuer's DID document (did.json)")
    parser.add_argument(
        "--status-list",
        metavar="FILE_OR_URL",
        help="the signed revocation status list credential: a file, or an http(s) URL to fetch",
    )
    parser.add_argument(
        "--suspension-list",
        metavar="FILE_OR_URL",
        help="the issuer's signed suspension status list: a file, or an http(s) URL to fetch",
    )
    parser.add_argument(
        "--offline", action="store_true", help="never use the network; status lists given as URLs are unchecked"
    )
    args = parser.parse_args(argv)

    try:
        credential = _read_json(args.credential, "credential")
        did_document = _read_json(args.did, "DID document")
        status_list = _load_status_list(args.status_list, args.offline)
        suspension_list = _load_status_list(args.suspension_list, args.offline)
    except _UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    report = verify_credential(credential, did_document, status_list=status_list, suspension_list=suspension_list)
    if args.suspension_list and suspension_list is None and NOT_SUSPENDED not in {c.name for c in report.checks}:
        # Asked for but unavailable (offline, or the fetch failed): say so, before the dates.
        checks = list(report.checks)
        checks.insert(-1, _not_checked(NOT_SUSPENDED, SUSPENSION_NOT_CHECKED))
        report = VerificationReport(tuple(checks))
    for check in report.checks:
        print(f"[{check.status.value:>11}] {check.name}: {check.message}")
    print(f"verdict: {report.verdict}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
