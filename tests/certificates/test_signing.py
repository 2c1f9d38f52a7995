"""eddsa-rdfc-2022 signing against the W3C vc-di-eddsa test vectors, and OB 3.0 credentials."""

import copy
import json
import socket
from pathlib import Path

import pytest

from certificates import signing
from certificates.credential import build_open_badge_credential

VECTORS = Path(__file__).parent / "vectors"


def _vector(name: str) -> dict:
    return json.loads((VECTORS / name).read_text())


SIGNED = _vector("eddsa-rdfc-2022_signedDataInt.json")
KEY_PAIR = _vector("keyPair.json")
PROOF_OPTIONS = _vector("eddsa-rdfc-2022_proofConfigDataInt.json")
UNSIGNED = {k: v for k, v in SIGNED.items() if k != "proof"}
PRIVATE_KEY = signing.private_key_from_multibase(KEY_PAIR["privateKeyMultibase"])
PUBLIC_KEY = signing.public_key_from_multibase(KEY_PAIR["publicKeyMultibase"])

ISSUER_DID = "did:web:shipwright.example"


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("signing must never touch the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _open_badge(**overrides) -> dict:
    fields = {
        "credential_url": "https://shipwright.example/verify/3kTMd9sXz2Qw7RpLq8VnYb/credential.json",
        "issuer_did": ISSUER_DID,
        "issuer_name": "Shipwright",
        "issuer_url": "https://shipwright.example/",
        "holder_name": "Zoë Ωmega-Łukasz",
        "achievement_id": "https://shipwright.example/courses/python-basics/",
        "achievement_name": "Python Basics",
        "achievement_description": "Variables, functions, tests.",
        "criteria_narrative": "Passed every graded lab of the course.",
        "valid_from": "2025-01-31T12:00:00Z",
        "status_list_url": "https://shipwright.example/credentials/status/1",
        "status_index": 94567,
        "evidence": None,
    }
    return build_open_badge_credential(**(fields | overrides))


def _keys(node) -> set[str]:
    if isinstance(node, list):
        return set().union(*(_keys(item) for item in node)) if node else set()
    if isinstance(node, dict):
        return set(node) | _keys(list(node.values()))
    return set()


# --- the W3C vectors -----------------------------------------------------------


def test_canonical_form_of_the_vector_document_matches_the_w3c_nquads():
    expected = (VECTORS / "eddsa-rdfc-2022_canonDocDataInt.txt").read_text()

    assert signing.canonicalize(UNSIGNED) == expected


def test_the_vector_key_pair_round_trips_through_multikey():
    assert signing.public_key_multibase(PRIVATE_KEY.public_key()) == KEY_PAIR["publicKeyMultibase"]
    assert signing.private_key_multibase(PRIVATE_KEY) == KEY_PAIR["privateKeyMultibase"]
    assert KEY_PAIR["publicKeyMultibase"].startswith("z6Mk")


def test_signing_the_vector_document_reproduces_the_w3c_proof():
    signed = signing.sign(
        UNSIGNED,
        private_key=PRIVATE_KEY,
        verification_method=PROOF_OPTIONS["verificationMethod"],
        created=PROOF_OPTIONS["created"],
    )

    assert signed["proof"] == SIGNED["proof"]
    signature = signing.base58btc_decode(signed["proof"]["proofValue"][1:])
    assert signature.hex() == (VECTORS / "eddsa-rdfc-2022_sigHexDataInt.txt").read_text().strip()


def test_signing_does_not_mutate_its_input():
    before = copy.deepcopy(UNSIGNED)

    signing.sign(UNSIGNED, private_key=PRIVATE_KEY, verification_method="did:x:y#k", created="2025-01-01T00:00:00Z")

    assert UNSIGNED == before


def test_the_signed_vector_verifies():
    assert signing.verify(SIGNED, public_key=PUBLIC_KEY)


def test_extract_proof_splits_the_document_from_its_proof():
    unsecured, proof = signing.extract_proof(SIGNED)

    assert unsecured == UNSIGNED
    assert proof == SIGNED["proof"]


def _with(document: dict, path: tuple, value) -> dict:
    changed = copy.deepcopy(document)
    target = changed
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return changed


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("name",), "Alumni Credential!"),
        (("description",), _DELETE),
        (("issuer",), "https://vc.example/issuers/9999"),
        (("validFrom",), "2023-01-01T00:00:01Z"),
        (("credentialSubject", "alumniOf"), "The School of Counterexamples"),
        (("credentialSubject", "id"), "did:example:mallory"),
        (("type",), ["VerifiableCredential"]),
        (
            ("@context",),
            [
                "https://www.w3.org/ns/credentials/v2",
                "https://www.w3.org/ns/credentials/examples/v2",
                {"alumniOf": "https://example.com/vocab#formerlyAt"},
            ],
        ),
        (("proof", "created"), "2023-02-24T23:36:39Z"),
        (("proof", "verificationMethod"), "did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2#other"),
        (("proof", "proofPurpose"), "authentication"),
        (("proof", "cryptosuite"), "eddsa-jcs-2022"),
        (("proof", "proofValue"), SIGNED["proof"]["proofValue"][:-1] + "a"),
        (("proof", "proofValue"), "u" + SIGNED["proof"]["proofValue"][1:]),
        (("proof",), _DELETE),
    ],
)
def test_any_change_to_a_claim_or_the_proof_breaks_the_signature(path, value):
    assert not signing.verify(_with(SIGNED, path, value), public_key=PUBLIC_KEY)


def test_another_key_does_not_verify_the_vector():
    assert not signing.verify(SIGNED, public_key=signing.generate_private_key().public_key())


# --- document loader and strict canonicalization ---------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://www.w3.org/ns/credentials/v2",
        "https://www.w3.org/ns/credentials/examples/v2",
        "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json",
    ],
)
def test_the_loader_serves_each_pinned_context_from_disk(url):
    assert "@context" in signing.document_loader(url, {})["document"]


@pytest.mark.parametrize(
    "url",
    [
        "https://www.w3.org/2018/credentials/v1",
        "https://purl.imsglobal.org/spec/ob/v3p0/context.json",
        "http://www.w3.org/ns/credentials/v2",
        "file:///etc/passwd",
    ],
)
def test_the_loader_refuses_any_other_url_without_touching_the_network(url):
    with pytest.raises(signing.UnknownContextError, match="not pinned"):
        signing.document_loader(url, {})
    with pytest.raises(signing.UnknownContextError):
        signing.canonicalize({"@context": [url], "id": "urn:x:1", "name": "x"})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c.update(favouriteColour="blue"), "favouriteColour"),
        (lambda c: c["credentialSubject"].update(email="ada@example.com"), "email"),
        (lambda c: c["credentialSubject"]["achievement"].update(level="gold"), "level"),
        (lambda c: c.update(type=["VerifiableCredential", "DiplomaCredential"]), "DiplomaCredential"),
        (lambda c: c.update(id="relative/credential.json"), "relative"),
    ],
)
def test_canonicalization_is_strict_so_nothing_unsigned_is_silently_dropped(change, message):
    credential = _open_badge()
    change(credential)

    with pytest.raises(signing.CanonicalizationError, match=message):
        signing.canonicalize(credential)
    with pytest.raises(signing.CanonicalizationError):
        signing.sign(
            credential,
            private_key=PRIVATE_KEY,
            verification_method=f"{ISSUER_DID}#key-1",
            created="2025-01-31T12:00:00Z",
        )


def test_a_document_with_an_undefined_term_does_not_verify():
    signed = signing.sign(
        _open_badge(),
        private_key=PRIVATE_KEY,
        verification_method=f"{ISSUER_DID}#key-1",
        created="2025-01-31T12:00:00Z",
    )
    signed["credentialSubject"]["unsignedClaim"] = "top of the class"

    assert not signing.verify(signed, public_key=PUBLIC_KEY)


# --- keys -------------------------------------------------------------------------


def test_a_generated_key_round_trips_through_pem_and_multibase(tmp_path):
    key = signing.generate_private_key()
    path = tmp_path / "issuer.pem"

    signing.save_private_key_file(key, path)

    assert path.stat().st_mode & 0o777 == 0o600
    for loaded in (
        signing.load_private_key_file(path),
        signing.load_private_key(signing.private_key_multibase(key)),
    ):
        assert signing.public_key_multibase(loaded.public_key()) == signing.public_key_multibase(key.public_key())


def test_saving_a_private_key_never_overwrites_an_existing_file(tmp_path):
    path = tmp_path / "issuer.pem"
    path.write_text("old key")

    with pytest.raises(FileExistsError):
        signing.save_private_key_file(signing.generate_private_key(), path)


@pytest.mark.parametrize(
    "value",
    [
        KEY_PAIR["privateKeyMultibase"],  # a secret key is not a public key
        "u" + KEY_PAIR["publicKeyMultibase"][1:],
        KEY_PAIR["publicKeyMultibase"][:-2],
        "z0OIl",
    ],
)
def test_a_malformed_public_key_multibase_is_rejected(value):
    with pytest.raises(ValueError):
        signing.public_key_from_multibase(value)


def test_the_did_document_lists_every_key_for_assertion():
    old, new = signing.generate_private_key(), signing.generate_private_key()

    document = signing.did_document(
        ISSUER_DID, [(f"{ISSUER_DID}#key-1", old.public_key()), ("#key-2", new.public_key())]
    )

    assert document == {
        "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"],
        "id": ISSUER_DID,
        "verificationMethod": [
            {
                "id": f"{ISSUER_DID}#key-{n}",
                "type": "Multikey",
                "controller": ISSUER_DID,
                "publicKeyMultibase": signing.public_key_multibase(key.public_key()),
            }
            for n, key in ((1, old), (2, new))
        ],
        "assertionMethod": [f"{ISSUER_DID}#key-1", f"{ISSUER_DID}#key-2"],
    }


def test_the_did_document_refuses_a_key_of_another_did():
    with pytest.raises(ValueError, match="not a fragment"):
        signing.did_document(ISSUER_DID, [("did:web:evil.example#key-1", PUBLIC_KEY)])


# --- Open Badges credentials ------------------------------------------------------


def test_an_open_badge_credential_signs_and_verifies():
    key = signing.generate_private_key()

    signed = signing.sign(
        _open_badge(), private_key=key, verification_method=f"{ISSUER_DID}#key-1", created="2025-01-31T12:00:00Z"
    )

    assert signed["proof"]["cryptosuite"] == "eddsa-rdfc-2022"
    assert signed["proof"]["proofPurpose"] == "assertionMethod"
    assert signed["proof"]["proofValue"].startswith("z")
    assert signing.verify(signed, public_key=key.public_key())
    signed["credentialSubject"]["name"] = "Someone Else"
    assert not signing.verify(signed, public_key=key.public_key())


def test_an_open_badge_credential_has_the_required_shape():
    credential = _open_badge(evidence=[{"id": "https://shipwright.example/labs/1/", "name": "Lab 1"}])

    assert credential["@context"] == [
        "https://www.w3.org/ns/credentials/v2",
        "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json",
    ]
    assert credential["type"] == ["VerifiableCredential", "OpenBadgeCredential"]
    assert credential["issuer"] == {
        "id": ISSUER_DID,
        "type": ["Profile"],
        "name": "Shipwright",
        "url": "https://shipwright.example/",
    }
    assert credential["credentialSubject"]["achievement"]["criteria"] == {
        "narrative": "Passed every graded lab of the course."
    }
    assert credential["credentialStatus"] == {
        "id": "https://shipwright.example/credentials/status/1#94567",
        "type": "BitstringStatusListEntry",
        "statusPurpose": "revocation",
        "statusListIndex": "94567",
        "statusListCredential": "https://shipwright.example/credentials/status/1",
    }
    assert credential["evidence"] == [
        {"type": ["Evidence"], "id": "https://shipwright.example/labs/1/", "name": "Lab 1"}
    ]


def test_an_open_badge_credential_never_mentions_email():
    credential = _open_badge()

    assert not any("email" in key.lower() for key in _keys(credential))


@pytest.mark.parametrize(
    "evidence",
    [
        None,
        [
            {
                "id": "https://shipwright.example/labs/1/",
                "name": "Lab 1",
                "description": "A lab",
                "narrative": "Passed 12/12 checks.",
            }
        ],
    ],
)
def test_every_value_of_an_open_badge_credential_reaches_the_signed_nquads(evidence):
    credential = _open_badge(evidence=evidence)

    nquads = signing.canonicalize(credential)

    for expected in [
        "<https://purl.imsglobal.org/spec/vc/ob/vocab.html#OpenBadgeCredential>",
        "<https://purl.imsglobal.org/spec/vc/ob/vocab.html#AchievementSubject>",
        '<https://schema.org/name> "Zoë Ωmega-Łukasz"',
        '<https://purl.imsglobal.org/spec/vc/ob/vocab.html#identityHash> "Zoë Ωmega-Łukasz"',
        '<https://schema.org/name> "Python Basics"',
        '<https://schema.org/description> "Variables, functions, tests."',
        '<https://purl.imsglobal.org/spec/vc/ob/vocab.html#narrative> "Passed every graded lab of the course."',
        '<https://schema.org/url> "https://shipwright.example/"',
        '<https://www.w3.org/ns/credentials/status#statusListIndex> "94567"',
        '"2025-01-31T12:00:00Z"^^<http://www.w3.org/2001/XMLSchema#dateTime>',
    ]:
        assert expected in nquads
    if evidence:
        assert '<https://purl.imsglobal.org/spec/vc/ob/vocab.html#narrative> "Passed 12/12 checks."' in nquads
    # One triple per JSON leaf value (plus one per nested object): nothing dropped.
    leaves = _count_leaves(credential)
    assert len(nquads.splitlines()) == leaves


def _count_leaves(node, key: str = "") -> int:
    """JSON values that become triples: every value except @context and ids."""
    if key in ("@context", "id"):
        return 0
    if isinstance(node, list):
        return sum(_count_leaves(item, key) for item in node)
    if isinstance(node, dict):
        links = 1 if key else 0  # the triple linking the parent to this node
        return links + sum(_count_leaves(value, k) for k, value in node.items())
    return 1
