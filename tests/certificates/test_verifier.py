"""The credential verifier: library checks and the Django-free command line."""

import copy
import functools
import http.server
import json
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from certificates import signing, status_list
from certificates.credential import build_open_badge_credential
from certificates.verifier import (
    DATES_VALID,
    ISSUER_MATCHES,
    KEY_LISTED,
    NOT_REVOKED,
    REVOCATION_NOT_CHECKED,
    SIGNATURE_VALID,
    CheckStatus,
    verify_credential,
)

REPO = Path(__file__).resolve().parents[2]
VECTORS = Path(__file__).parent / "vectors"

DID = "did:web:shipwright.example"
OLD_KEY = signing.generate_private_key()
KEY = signing.generate_private_key()
OTHER_KEY = signing.generate_private_key()
DID_DOCUMENT = signing.did_document(DID, [(f"{DID}#key-1", OLD_KEY.public_key()), (f"{DID}#key-2", KEY.public_key())])
STATUS_URL = "https://shipwright.example/credentials/status/1"
INDEX = 94_567
CREATED = "2025-01-31T12:00:00Z"
NOW = datetime(2025, 6, 1, tzinfo=UTC)

PASSED, FAILED, NOT_CHECKED = CheckStatus.PASSED, CheckStatus.FAILED, CheckStatus.NOT_CHECKED


def _credential(*, key=KEY, method=f"{DID}#key-2", **overrides) -> dict:
    fields = {
        "credential_url": "https://shipwright.example/verify/3kTMd9sXz2Qw7RpLq8VnYb/credential.json",
        "issuer_did": DID,
        "issuer_name": "Shipwright",
        "issuer_url": "https://shipwright.example/",
        "holder_name": "Ada Lovelace",
        "achievement_id": "https://shipwright.example/courses/python-basics/",
        "achievement_name": "Python Basics",
        "achievement_description": "Variables, functions, tests.",
        "criteria_narrative": "Passed every graded lab.",
        "valid_from": "2025-01-31T12:00:00Z",
        "status_list_url": STATUS_URL,
        "status_index": INDEX,
        "evidence": None,
    }
    unsigned = build_open_badge_credential(**(fields | overrides))
    return signing.sign(unsigned, private_key=key, verification_method=method, created=CREATED)


def _status_list(*, revoked=(), key=KEY, method=f"{DID}#key-2", url=STATUS_URL, issuer=DID, **extra) -> dict:
    bits = status_list.new_bitstring()
    for index in revoked:
        status_list.set_bit(bits, index)
    unsigned = status_list.status_list_credential(
        status_list_url=url, issuer_did=issuer, bits=bits, valid_from=CREATED, **extra
    )
    return signing.sign(unsigned, private_key=key, verification_method=method, created=CREATED)


CREDENTIAL = _credential()
STATUS_LIST = _status_list()


def _statuses(report) -> dict:
    return {check.name: check.status for check in report.checks}


def test_a_genuine_credential_passes_every_check_in_order():
    report = verify_credential(CREDENTIAL, DID_DOCUMENT, now=NOW, status_list=STATUS_LIST)

    assert [check.name for check in report.checks] == [
        SIGNATURE_VALID,
        KEY_LISTED,
        ISSUER_MATCHES,
        NOT_REVOKED,
        DATES_VALID,
    ]
    assert all(check.status is PASSED for check in report.checks), report.checks
    assert report.ok and report.fully_verified
    assert report.verdict == "valid"


def test_a_credential_signed_with_a_retired_key_still_verifies():
    credential = _credential(key=OLD_KEY, method=f"{DID}#key-1")

    report = verify_credential(credential, DID_DOCUMENT, now=NOW, status_list=STATUS_LIST)

    assert report.verdict == "valid"


def test_without_a_status_list_revocation_is_not_checked_and_the_verdict_says_so():
    report = verify_credential(CREDENTIAL, DID_DOCUMENT, now=NOW)

    assert report[NOT_REVOKED].status is NOT_CHECKED
    assert report[NOT_REVOKED].message == REVOCATION_NOT_CHECKED
    assert report.ok and not report.fully_verified
    assert report.verdict == "signature valid; revocation status not checked (offline)"


def _tampered(change) -> dict:
    credential = copy.deepcopy(CREDENTIAL)
    change(credential)
    return credential


def _did_document(change) -> dict:
    document = copy.deepcopy(DID_DOCUMENT)
    change(document)
    return document


@pytest.mark.parametrize(
    ("credential", "did_document", "status_list_credential", "now", "failed"),
    [
        pytest.param(
            _tampered(lambda c: c["credentialSubject"].update(name="Mallory")),
            DID_DOCUMENT,
            STATUS_LIST,
            NOW,
            {SIGNATURE_VALID},
            id="changed holder name",
        ),
        pytest.param(
            _tampered(lambda c: c["credentialSubject"].update(grade="A+")),
            DID_DOCUMENT,
            STATUS_LIST,
            NOW,
            {SIGNATURE_VALID},
            id="added undefined claim",
        ),
        pytest.param(
            _tampered(lambda c: c.pop("proof")),
            DID_DOCUMENT,
            STATUS_LIST,
            NOW,
            {SIGNATURE_VALID, KEY_LISTED, ISSUER_MATCHES},
            id="no proof",
        ),
        pytest.param(
            _credential(key=OTHER_KEY),
            DID_DOCUMENT,
            STATUS_LIST,
            NOW,
            {SIGNATURE_VALID},
            id="signed by a key that is not the one named",
        ),
        pytest.param(
            _credential(key=OTHER_KEY, method=f"{DID}#key-3"),
            DID_DOCUMENT,
            STATUS_LIST,
            NOW,
            {SIGNATURE_VALID, KEY_LISTED, ISSUER_MATCHES},
            id="key not in the DID document",
        ),
        pytest.param(
            CREDENTIAL,
            _did_document(lambda d: d.update(assertionMethod=[f"{DID}#key-1"])),
            STATUS_LIST,
            NOW,
            {KEY_LISTED, NOT_REVOKED},  # the list is signed with that key too
            id="key present but not an assertion method",
        ),
        pytest.param(
            CREDENTIAL,
            _did_document(lambda d: d["verificationMethod"][1].update(controller="did:web:evil.example")),
            STATUS_LIST,
            NOW,
            {ISSUER_MATCHES},
            id="key controlled by someone else",
        ),
        pytest.param(
            _credential(issuer_did="did:web:evil.example"),
            DID_DOCUMENT,
            STATUS_LIST,
            NOW,
            {ISSUER_MATCHES, NOT_REVOKED},  # lists differ in issuer
            id="issuer is not the DID document",
        ),
        pytest.param(
            CREDENTIAL,
            DID_DOCUMENT,
            _status_list(revoked=[INDEX]),
            NOW,
            {NOT_REVOKED},
            id="revoked",
        ),
        pytest.param(
            CREDENTIAL,
            DID_DOCUMENT,
            _status_list(revoked=[INDEX - 1, INDEX + 1]),
            NOW,
            set(),
            id="another bit revoked does not matter",
        ),
        pytest.param(
            CREDENTIAL,
            DID_DOCUMENT,
            {**_status_list(revoked=[INDEX]), "credentialSubject": STATUS_LIST["credentialSubject"]},
            NOW,
            {NOT_REVOKED},
            id="status list forged to clear the bit",
        ),
        pytest.param(
            CREDENTIAL,
            DID_DOCUMENT,
            _status_list(key=OTHER_KEY),
            NOW,
            {NOT_REVOKED},
            id="status list signed by another key",
        ),
        pytest.param(
            CREDENTIAL,
            DID_DOCUMENT,
            _status_list(url="https://shipwright.example/credentials/status/2"),
            NOW,
            {NOT_REVOKED},
            id="a different status list",
        ),
        pytest.param(
            CREDENTIAL,
            DID_DOCUMENT,
            _status_list(valid_until="2025-03-01T00:00:00Z"),
            NOW,
            {NOT_REVOKED},
            id="expired status list",
        ),
        pytest.param(
            CREDENTIAL,
            DID_DOCUMENT,
            STATUS_LIST,
            datetime(2025, 1, 31, 11, 59, tzinfo=UTC),
            {DATES_VALID, NOT_REVOKED},  # the status list is not valid yet either
            id="not valid yet",
        ),
        pytest.param(
            _credential(valid_from="not a date"),
            DID_DOCUMENT,
            STATUS_LIST,
            NOW,
            {DATES_VALID},
            id="unreadable date",
        ),
    ],
)
def test_each_kind_of_forgery_fails_the_checks_it_should(credential, did_document, status_list_credential, now, failed):
    report = verify_credential(credential, did_document, now=now, status_list=status_list_credential)

    assert {c.name for c in report.failed} == failed, report.checks
    assert report.ok is (not failed)
    if failed:
        assert report.verdict.startswith("NOT VALID")


@pytest.mark.parametrize(
    ("credential", "did_document"),
    [
        (_tampered(lambda c: c.update({"@context": "not-a-url"})), DID_DOCUMENT),
        (_tampered(lambda c: c["proof"].update(verificationMethod={"id": 5})), DID_DOCUMENT),
        (_tampered(lambda c: c.update(credentialStatus=[1, "x"])), DID_DOCUMENT),
        (_tampered(lambda c: c["credentialStatus"].update(statusListIndex={"n": 1})), DID_DOCUMENT),
        (CREDENTIAL, _did_document(lambda d: d.update(id=5, assertionMethod=1, verificationMethod=True))),
        (CREDENTIAL, {}),
    ],
)
def test_malformed_input_fails_checks_instead_of_crashing(credential, did_document):
    report = verify_credential(credential, did_document, now=NOW, status_list=STATUS_LIST)

    assert not report.ok


def test_an_expired_credential_fails_the_date_check():
    unsigned = {k: v for k, v in CREDENTIAL.items() if k != "proof"} | {"validUntil": "2025-05-01T00:00:00Z"}
    credential = signing.sign(unsigned, private_key=KEY, verification_method=f"{DID}#key-2", created=CREATED)

    report = verify_credential(credential, DID_DOCUMENT, now=NOW, status_list=STATUS_LIST)

    assert _statuses(report) == {
        SIGNATURE_VALID: PASSED,
        KEY_LISTED: PASSED,
        ISSUER_MATCHES: PASSED,
        NOT_REVOKED: PASSED,
        DATES_VALID: FAILED,
    }
    assert "expired" in report[DATES_VALID].message


def test_the_w3c_vector_has_a_valid_signature_but_is_not_from_the_did_document_issuer():
    signed = json.loads((VECTORS / "eddsa-rdfc-2022_signedDataInt.json").read_text())
    key_pair = json.loads((VECTORS / "keyPair.json").read_text())
    did_key = "did:key:" + key_pair["publicKeyMultibase"]
    did_document = signing.did_document(
        did_key,
        [(signed["proof"]["verificationMethod"], signing.public_key_from_multibase(key_pair["publicKeyMultibase"]))],
    )

    report = verify_credential(signed, did_document, now=NOW)

    assert _statuses(report) == {
        SIGNATURE_VALID: PASSED,
        KEY_LISTED: PASSED,
        ISSUER_MATCHES: FAILED,  # its issuer is https://vc.example/issuers/5678
        NOT_REVOKED: PASSED,  # it has no credentialStatus
        DATES_VALID: PASSED,
    }


# --- command line -----------------------------------------------------------------


def _write(directory: Path, name: str, document: dict) -> str:
    path = directory / name
    path.write_text(json.dumps(document))
    return str(path)


def _run_cli(directory: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-m", "certificates.verifier", *args],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def files(tmp_path):
    return {
        "credential": _write(tmp_path, "credential.json", CREDENTIAL),
        "did": _write(tmp_path, "did.json", DID_DOCUMENT),
        "status": _write(tmp_path, "status.json", STATUS_LIST),
        "revoked": _write(tmp_path, "revoked.json", _status_list(revoked=[INDEX])),
        "forged": _write(tmp_path, "forged.json", _tampered(lambda c: c["credentialSubject"].update(name="Mallory"))),
    }


def test_the_cli_offline_never_says_just_valid(tmp_path, files):
    result = _run_cli(tmp_path, files["credential"], "--did", files["did"], "--offline")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 6
    assert "not revoked: revocation status not checked (offline)" in result.stdout
    assert lines[-1] == "verdict: signature valid; revocation status not checked (offline)"


def test_the_cli_offline_ignores_a_status_list_url(tmp_path, files):
    result = _run_cli(
        tmp_path, files["credential"], "--did", files["did"], "--offline", "--status-list", "http://127.0.0.1:9/status"
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "verdict: signature valid; revocation status not checked (offline)"


def test_the_cli_with_a_status_list_file_says_valid(tmp_path, files):
    result = _run_cli(tmp_path, files["credential"], "--did", files["did"], "--status-list", files["status"])

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "verdict: valid"
    assert result.stdout.count("[     passed]") == 5


@pytest.mark.parametrize(
    ("credential", "status", "failed_check"),
    [("forged", "status", SIGNATURE_VALID), ("credential", "revoked", NOT_REVOKED)],
)
def test_the_cli_exits_1_when_a_check_fails(tmp_path, files, credential, status, failed_check):
    result = _run_cli(tmp_path, files[credential], "--did", files["did"], "--status-list", files[status])

    assert result.returncode == 1
    assert f"[     failed] {failed_check}:" in result.stdout
    assert result.stdout.splitlines()[-1].startswith("verdict: NOT VALID")


@pytest.mark.parametrize(
    "args",
    [
        ("missing.json", "--did", "{did}"),
        ("{credential}", "--did", "missing.json"),
        ("{credential}", "--did", "{did}", "--status-list", "missing.json"),
        ("{credential}",),
        ("{credential}", "--did", "{did}", "--no-such-option"),
    ],
)
def test_the_cli_exits_2_for_usage_errors_and_unreadable_files(tmp_path, files, args):
    result = _run_cli(tmp_path, *(arg.format(**files) for arg in args))

    assert result.returncode == 2
    assert result.stdout == ""


def test_the_cli_exits_2_for_a_file_that_is_not_json(tmp_path, files):
    (tmp_path / "garbage.json").write_text("{not json")

    result = _run_cli(tmp_path, "garbage.json", "--did", files["did"])

    assert result.returncode == 2
    assert "cannot read credential" in result.stderr


@pytest.fixture
def status_server(tmp_path):
    """A loopback HTTP server publishing the status list credentials."""
    root = tmp_path / "www"
    root.mkdir()
    _write(root, "status-1", STATUS_LIST)
    _write(root, "revoked", _status_list(revoked=[INDEX]))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_the_cli_fetches_a_status_list_url(tmp_path, files, status_server):
    # The credential points at https://shipwright.example/...; the list served is the
    # same signed document, so its id still matches.
    result = _run_cli(
        tmp_path, files["credential"], "--did", files["did"], "--status-list", f"{status_server}/status-1"
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == "verdict: valid"


def test_the_cli_sees_a_revocation_published_at_a_url(tmp_path, files, status_server):
    result = _run_cli(tmp_path, files["credential"], "--did", files["did"], "--status-list", f"{status_server}/revoked")

    assert result.returncode == 1
    assert "[     failed] not revoked: revoked" in result.stdout


def test_the_cli_reports_an_unreachable_status_list_as_not_checked(tmp_path, files, status_server):
    result = _run_cli(tmp_path, files["credential"], "--did", files["did"], "--status-list", f"{status_server}/missing")

    assert result.returncode == 0
    assert result.stdout.splitlines()[-1] == "verdict: signature valid; revocation status not checked (offline)"
    assert "404" in result.stderr


@pytest.mark.parametrize(("revoked", "verdict"), [((), "valid"), ((INDEX,), "NOT VALID")])
def test_the_library_fetches_the_credentials_own_status_list_url(tmp_path, status_server, revoked, verdict):
    url = f"{status_server}/status-2"
    _write(tmp_path / "www", "status-2", _status_list(url=url, revoked=revoked))
    credential = _credential(status_list_url=url)

    report = verify_credential(credential, DID_DOCUMENT, now=NOW, status_list="fetch")

    assert report.verdict.startswith(verdict)


def test_the_library_refuses_a_fetched_list_published_for_another_url(status_server):
    # status-1 is the list whose id is https://shipwright.example/credentials/status/1.
    credential = _credential(status_list_url=f"{status_server}/status-1")

    report = verify_credential(credential, DID_DOCUMENT, now=NOW, status_list="fetch")

    assert report[NOT_REVOKED].status is FAILED
    assert "points to" in report[NOT_REVOKED].message


def test_the_library_reports_a_failed_fetch_as_not_checked():
    credential = _credential(status_list_url="http://127.0.0.1:9/status/1")

    report = verify_credential(credential, DID_DOCUMENT, now=NOW, status_list="fetch")

    assert report[NOT_REVOKED].status is NOT_CHECKED
    assert report[NOT_REVOKED].message.startswith(REVOCATION_NOT_CHECKED)
    assert report.verdict == "signature valid; revocation status not checked (offline)"


def test_the_verifier_module_does_not_import_django(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"} | {"PYTHONPATH": str(REPO)}
    code = (
        "import sys, certificates.verifier, certificates.pdf, certificates.credential; print('django' in sys.modules)"
    )

    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )

    assert result.stdout.strip() == "False", result.stderr
