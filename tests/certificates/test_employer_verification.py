"""What an employer sees and checks: the verify page, the 404 for an unknown or
private id, and a suspension published in a signed status list of its own."""

from __future__ import annotations

import copy
import importlib
import json

import pytest
from django.apps import apps

from certificates import services, signing
from certificates import status_list as bitstring
from certificates.credential import build_open_badge_credential
from certificates.models import Certificate, StatusList
from certificates.verifier import (
    NOT_REVOKED,
    NOT_SUSPENDED,
    SUSPENSION_NOT_CHECKED,
    CheckStatus,
    verify_credential,
)
from tests.certificates.test_issuing_and_verify_page import pass_lab
from tests.grading.tiny_lab import make_tiny_course

PASSED, FAILED, NOT_CHECKED = CheckStatus.PASSED, CheckStatus.FAILED, CheckStatus.NOT_CHECKED


@pytest.fixture
def certificate(db, tmp_path, learner) -> Certificate:
    from courses.importer import content_import
    from courses.models import Course

    content_import(make_tiny_course(tmp_path / "content"))
    course = Course.objects.get(slug="tiny-course")
    pass_lab(learner, course)
    issued = services.certificate_award_if_complete(user=learner, course=course)
    assert issued is not None
    return issued


def _published(client, public_id: str) -> tuple[dict, dict, dict, dict]:
    """What an employer downloads: credential, DID document, revocation and suspension lists."""
    credential = json.loads(client.get(f"/verify/{public_id}/credential.json").content)
    did = client.get("/.well-known/did.json").json()
    return credential, did, client.get("/status/revocation").json(), client.get("/status/suspension").json()


def test_the_suspension_list_is_a_signed_status_list_of_its_own(certificate, employer):
    credential, did, revocation, suspension = _published(employer, certificate.public_id)

    assert suspension["type"] == ["VerifiableCredential", "BitstringStatusListCredential"]
    assert suspension["id"].endswith("/status/suspension")
    assert suspension["credentialSubject"]["statusPurpose"] == "suspension"
    assert revocation["credentialSubject"]["statusPurpose"] == "revocation"
    assert suspension["issuer"] == credential["issuer"]["id"] == did["id"]
    report = verify_credential(credential, did, status_list=revocation, suspension_list=suspension)
    assert report.fully_verified, report.verdict
    assert report[NOT_SUSPENDED].status is PASSED


def test_the_credential_keeps_one_revocation_entry_as_the_contract_says(certificate):
    """CONTRACTS.md section 3: `credentialStatus` is a BitstringStatusListEntry with
    purpose revocation. A list of two entries would break readers of that object, so
    the suspension list is found by the issuer's convention (same index) instead."""
    entry = json.loads(certificate.credential)["credentialStatus"]

    assert isinstance(entry, dict)
    assert entry["type"] == "BitstringStatusListEntry" and entry["statusPurpose"] == "revocation"


def test_a_suspension_is_seen_by_outside_verifiers_until_it_is_lifted(certificate, employer, instructor):
    services.certificate_suspend(certificate=certificate, reason="Under review", by=instructor)

    credential, did, revocation, suspension = _published(employer, certificate.public_id)
    assert bitstring.is_set(bitstring.decode(suspension["credentialSubject"]["encodedList"]), certificate.status_index)
    report = verify_credential(credential, did, status_list=revocation, suspension_list=suspension)
    assert report[NOT_SUSPENDED].status is FAILED
    assert report[NOT_SUSPENDED].message.startswith("suspended (bit")
    assert report[NOT_REVOKED].status is PASSED
    assert report.verdict.startswith("NOT VALID")

    services.certificate_reinstate(certificate=certificate, by=instructor)

    credential, did, revocation, suspension = _published(employer, certificate.public_id)
    assert verify_credential(credential, did, status_list=revocation, suspension_list=suspension).fully_verified


def test_revoking_a_suspended_certificate_moves_its_bit_to_the_revocation_list(certificate, employer):
    services.certificate_suspend(certificate=certificate, reason="Under review")
    services.certificate_revoke(certificate=certificate, reason="Plagiarised capstone")

    credential, did, revocation, suspension = _published(employer, certificate.public_id)
    index = certificate.status_index
    assert bitstring.is_set(bitstring.decode(revocation["credentialSubject"]["encodedList"]), index)
    assert not bitstring.is_set(bitstring.decode(suspension["credentialSubject"]["encodedList"]), index)
    report = verify_credential(credential, did, status_list=revocation, suspension_list=suspension)
    assert report[NOT_REVOKED].status is FAILED and report[NOT_SUSPENDED].status is PASSED


def test_the_verify_page_runs_the_suspension_check(certificate, employer):
    services.certificate_suspend(certificate=certificate, reason="Under review")

    page = employer.get(f"/verify/{certificate.public_id}/").content.decode()

    assert "Suspended" in page and "Under review" in page
    assert "not suspended" in page and "suspended (bit" in page


def test_certificates_suspended_before_the_list_existed_are_published_as_suspended(certificate, employer):
    Certificate.objects.filter(pk=certificate.pk).update(status=Certificate.Status.SUSPENDED)
    StatusList.objects.filter(slug="suspension").delete()
    migration = importlib.import_module("certificates.migrations.0003_suspension_status_list")

    migration.fill_suspension_list(apps, None)

    suspension = employer.get("/status/suspension").json()
    assert bitstring.is_set(bitstring.decode(suspension["credentialSubject"]["encodedList"]), certificate.status_index)


# --- the verifier, on lists of its own making ---------------------------------------

DID = "did:web:issuer.example"
KEY = signing.generate_private_key()
DID_DOCUMENT = signing.did_document(DID, [(f"{DID}#key-1", KEY.public_key())])
INDEX = 4242
CREATED = "2025-01-31T12:00:00Z"


def _signed(document: dict, key=KEY) -> dict:
    return signing.sign(document, private_key=key, verification_method=f"{DID}#key-1", created=CREATED)


def _credential() -> dict:
    return _signed(
        build_open_badge_credential(
            credential_url="https://issuer.example/verify/abc/",
            issuer_did=DID,
            issuer_name="Shipwright",
            issuer_url="https://issuer.example/",
            holder_name="Ada Lovelace",
            achievement_id="https://issuer.example/courses/x/#certificate",
            achievement_name="MLOps",
            achievement_description="Awarded.",
            criteria_narrative="Pass.",
            valid_from=CREATED,
            status_list_url="https://issuer.example/status/revocation",
            status_index=INDEX,
        )
    )


def _list(purpose: str, *, set_bits=(), key=KEY, issuer=DID) -> dict:
    bits = bitstring.new_bitstring()
    for index in set_bits:
        bitstring.set_bit(bits, index)
    return _signed(
        bitstring.status_list_credential(
            status_list_url=f"https://issuer.example/status/{purpose}",
            issuer_did=issuer,
            bits=bits,
            valid_from=CREATED,
            status_purpose=purpose,
        ),
        key=key,
    )


CREDENTIAL = _credential()
REVOCATION = _list("revocation")


def test_without_a_suspension_list_the_report_is_as_before():
    report = verify_credential(CREDENTIAL, DID_DOCUMENT, status_list=REVOCATION)

    assert NOT_SUSPENDED not in {check.name for check in report.checks}
    assert report.verdict == "valid"


@pytest.mark.parametrize(
    ("suspension_list", "message"),
    [
        (_list("suspension", set_bits=[INDEX]), "suspended (bit 4242"),
        (_list("revocation"), "the status list's purpose is 'revocation', not 'suspension'"),
        (_list("suspension", key=signing.generate_private_key()), "status list signature"),
        (_list("suspension", issuer="did:web:elsewhere.example"), "the status list was not issued by the credential"),
    ],
    ids=["bit set", "wrong purpose", "forged", "another issuer"],
)
def test_a_suspension_list_fails_when_set_forged_or_not_a_suspension_list(suspension_list, message):
    report = verify_credential(CREDENTIAL, DID_DOCUMENT, status_list=REVOCATION, suspension_list=suspension_list)

    assert report[NOT_SUSPENDED].status is FAILED
    assert report[NOT_SUSPENDED].message.startswith(message), report[NOT_SUSPENDED].message
    assert not report.ok


def test_a_credential_with_its_own_suspension_entry_points_to_its_list():
    unsigned = {k: v for k, v in CREDENTIAL.items() if k != "proof"}
    unsigned["credentialStatus"] = [
        unsigned["credentialStatus"],
        bitstring.status_list_entry(
            status_list_url="https://issuer.example/status/suspension", index=7, status_purpose="suspension"
        ),
    ]
    credential = _signed(unsigned)

    unchecked = verify_credential(credential, DID_DOCUMENT, status_list=REVOCATION)
    assert unchecked[NOT_SUSPENDED].status is NOT_CHECKED
    assert unchecked.verdict == f"signature valid; {SUSPENSION_NOT_CHECKED}"
    suspended = verify_credential(
        credential, DID_DOCUMENT, status_list=REVOCATION, suspension_list=_list("suspension", set_bits=[7])
    )
    assert suspended[NOT_SUSPENDED].message.startswith("suspended (bit 7 ")
    assert suspended[NOT_REVOKED].status is PASSED


# --- the pages ------------------------------------------------------------------------


@pytest.mark.parametrize("debug", [False, True])
def test_an_unknown_or_private_id_gets_our_page_saying_so_even_in_debug(certificate, employer, settings, debug):
    settings.DEBUG = debug
    unknown = employer.get("/verify/mistyped-id/")
    Certificate.objects.filter(pk=certificate.pk).update(public=False)
    private = employer.get(f"/verify/{certificate.public_id}/")

    for response in (unknown, private):
        page = response.content.decode()
        assert response.status_code == 404
        assert [t.name for t in response.templates][:2] == ["certificates/not_found.html", "base.html"]
        assert "no public certificate with this id" in page.lower()
        assert 'class="site-header"' in page and "Catalog" in page  # the site's layout
        assert "URLconf" not in page and "mistyped-id" not in page
    assert unknown.content == private.content


def test_the_holder_name_leads_the_page_and_nothing_is_said_twice(certificate, employer):
    page = employer.get(f"/verify/{certificate.public_id}/").content.decode()

    assert page.count("<h1") == 1
    assert '<h1 class="verify-holder" id="holder">Ada Learner</h1>' in page
    criteria = json.loads(certificate.credential)["credentialSubject"]["achievement"]["criteria"]["narrative"]
    assert criteria not in page
    assert page.count("Tiny lab") == 1  # in the labs-passed table only


def test_the_issuer_is_named_with_its_origin_and_the_did_is_a_detail(certificate, employer, settings):
    page = employer.get(f"/verify/{certificate.public_id}/").content.decode()
    issuer_did = json.loads(certificate.credential)["issuer"]["id"]

    card = page[page.index('class="card verify-certificate"') :]
    card = card[: card.index("</section>")]
    assert f'Shipwright, <a href="{settings.SITE_URL}/">{settings.SITE_URL}</a>' in card
    details = card[card.index('<details class="verify-did">') : card.index("</details>")]
    assert card.count(issuer_did) == 1 and issuer_did in details  # the checks below may name it too


def test_without_evidence_the_labs_are_listed_once(certificate, employer):
    Certificate.objects.filter(pk=certificate.pk).update(show_evidence=False)

    page = employer.get(f"/verify/{certificate.public_id}/").content.decode()

    assert page.count("Tiny lab") == 1 and "Labs passed: Tiny lab." in page


def test_the_page_offers_the_standalone_verifier_and_both_status_lists(certificate, employer, settings):
    page = employer.get(f"/verify/{certificate.public_id}/").content.decode()

    assert 'href="/verify/shipwright-verify.pyz"' in page
    assert f"--status-list {settings.SITE_URL}/status/revocation" in page
    assert f"--suspension-list {settings.SITE_URL}/status/suspension" in page
    download = employer.get("/verify/shipwright-verify.pyz")
    assert download.status_code == 200
    assert download["Content-Disposition"] == 'attachment; filename="shipwright-verify.pyz"'


def test_a_tampered_copy_is_not_valid_for_the_suspension_check_either(certificate, employer):
    credential, did, revocation, suspension = _published(employer, certificate.public_id)
    forged = copy.deepcopy(suspension)
    forged["credentialSubject"]["encodedList"] = bitstring.encode(bitstring.new_bitstring())
    forged["validFrom"] = "2001-01-01T00:00:00Z"

    report = verify_credential(credential, did, status_list=revocation, suspension_list=forged)

    assert report[NOT_SUSPENDED].status is FAILED
