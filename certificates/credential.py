"""Unsigned Open Badges 3.0 `OpenBadgeCredential`s (VC Data Model 2.0).

Only terms defined by the pinned VC 2.0 and OB 3.0.3 contexts are used; signing
canonicalizes strictly, so an undefined term fails loudly instead of being dropped
from the signed data. The learner's email never appears in a credential.
"""

from __future__ import annotations

from typing import Any

from certificates.signing import CREDENTIALS_V2_URL, OPEN_BADGES_V3_URL
from certificates.status_list import STATUS_PURPOSE_REVOCATION, status_list_entry


def build_open_badge_credential(
    *,
    credential_url: str,
    issuer_did: str,
    issuer_name: str,
    issuer_url: str,
    holder_name: str,
    achievement_id: str,
    achievement_name: str,
    achievement_description: str,
    criteria_narrative: str,
    valid_from: str,
    status_list_url: str,
    status_index: int,
    evidence: list[dict[str, Any]] | None = None,
    replaces: dict[str, str] | None = None,
    related: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """Build the unsigned credential; sign it with `certificates.signing.sign`.

    `valid_from` is an XML Schema dateTime ("2025-01-31T12:00:00Z"). Each
    `evidence` item is an OB 3.0 Evidence object, e.g. {"id": url, "name": ...};
    its `type` defaults to ["Evidence"]. `replaces` is a VC 2.0 `relatedResource`
    ({"id", "digestSRI", "mediaType"}) naming the credential this one reissues;
    `related` lists more of them: the prerequisite credentials this one builds on.
    """
    credential: dict[str, Any] = {
        "@context": [CREDENTIALS_V2_URL, OPEN_BADGES_V3_URL],
        "id": credential_url,
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "name": achievement_name,
        "issuer": {
            "id": issuer_did,
            "type": ["Profile"],
            "name": issuer_name,
            "url": issuer_url,
        },
        "validFrom": valid_from,
        "credentialSubject": {
            "type": ["AchievementSubject"],
            "name": holder_name,
            # OB 3.0 requires an `id` or an `identifier` for the subject. Learners
            # have no DID, and their email must never be published, so the
            # identifier is the (already public) display name, in plain text.
            "identifier": [
                {
                    "type": "IdentityObject",
                    "identityType": "name",
                    "hashed": False,
                    "identityHash": holder_name,
                }
            ],
            "achievement": {
                "id": achievement_id,
                "type": ["Achievement"],
                "name": achievement_name,
                "description": achievement_description,
                "criteria": {"narrative": criteria_narrative},
            },
        },
        "credentialStatus": status_list_entry(
            status_list_url=status_list_url,
            index=status_index,
            status_purpose=STATUS_PURPOSE_REVOCATION,
        ),
    }
    if evidence:
        credential["evidence"] = [{"type": ["Evidence"]} | item for item in evidence]
    if replaces:
        credential["description"] = (
            f"Reissued with the holder's new name. It replaces the credential {replaces['id']}, "
            "which was revoked as superseded."
        )
    resources = ([replaces] if replaces else []) + (related or [])
    if resources:
        credential["relatedResource"] = resources
    return credential
