"""An employer opens a verify link in Chromium, on a desktop (1280x900) and on a
phone (390x844): valid, revoked, suspended and unknown certificates, and the
verifier the page offers, run on a Python that has nothing of ours installed."""

from __future__ import annotations

import pytest

from certificates import services, standalone
from tests.certificates.test_issuing_and_verify_page import pass_lab
from tests.certificates.test_standalone_verifier import declared_only_site, run_standalone
from tests.grading.tiny_lab import make_tiny_course

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SIZES = ["page", "phone"]

# The largest font size of any other visible text on the page, and the holder's.
FONT_SIZES = """() => {
  const holder = document.querySelector('#holder');
  const texts = [...document.querySelectorAll('body *')].filter(e =>
    e !== holder && e.getClientRects().length &&
    [...e.childNodes].some(n => n.nodeType === Node.TEXT_NODE && n.textContent.trim()));
  return {holder: parseFloat(getComputedStyle(holder).fontSize),
          others: Math.max(...texts.map(e => parseFloat(getComputedStyle(e).fontSize)))};
}"""
OVERFLOW = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"


@pytest.fixture
def certificate(transactional_db, tmp_path, learner):
    from courses.importer import content_import
    from courses.models import Course

    content_import(make_tiny_course(tmp_path / "content"))
    course = Course.objects.get(slug="tiny-course")
    pass_lab(learner, course)
    return services.certificate_award_if_complete(user=learner, course=course)


def open_verify_page(request, size: str, live_server, public_id: str):
    browser_page = request.getfixturevalue(size)
    response = browser_page.goto(f"{live_server.url}/verify/{public_id}/")
    return browser_page, response


@pytest.mark.parametrize("size", SIZES)
def test_a_valid_certificate_leads_with_the_holders_name(request, size, live_server, certificate):
    page, response = open_verify_page(request, size, live_server, certificate.public_id)

    assert response.status == 200
    assert page.locator("#status-banner").inner_text().startswith("Valid certificate")
    holder = page.get_by_role("heading", level=1)
    assert holder.inner_text() == "Ada Learner"
    sizes = page.evaluate(FONT_SIZES)
    assert sizes["holder"] > sizes["others"], sizes
    box = holder.bounding_box()
    assert box is not None and box["y"] + box["height"] <= page.viewport_size["height"]  # seen without scrolling
    assert page.evaluate(OVERFLOW) == 0  # nothing wider than the screen
    for check in ("signature valid", "not revoked", "not suspended", "dates valid"):
        assert page.locator("#checks li", has_text=check).locator(".tag").inner_text() == "passed"


@pytest.mark.parametrize("size", SIZES)
def test_the_issuer_shows_by_name_and_origin_and_the_did_on_request(request, size, live_server, certificate, settings):
    page, _ = open_verify_page(request, size, live_server, certificate.public_id)

    issuer = page.locator("#issuer")
    assert issuer.inner_text().startswith(f"Shipwright, {settings.SITE_URL}")
    did = issuer.locator(".verify-did code")
    assert not did.is_visible()
    issuer.get_by_text("Issuer's decentralised identifier (DID)").click()
    assert did.is_visible() and did.inner_text().startswith("did:web:")


@pytest.mark.parametrize("size", SIZES)
def test_a_revoked_certificate_says_so_with_the_reason(request, size, live_server, certificate):
    services.certificate_revoke(certificate=certificate, reason="Plagiarised capstone")

    page, response = open_verify_page(request, size, live_server, certificate.public_id)

    assert response.status == 200
    banner = page.locator("#status-banner").inner_text()
    assert banner.startswith("Revoked") and "Plagiarised capstone" in banner
    assert page.get_by_role("heading", level=1).inner_text() == "Ada Learner"
    assert page.locator("#checks li", has_text="not revoked").locator(".tag").inner_text() == "failed"
    assert page.evaluate(OVERFLOW) == 0


@pytest.mark.parametrize("size", SIZES)
def test_a_suspended_certificate_says_so_and_fails_the_suspension_check(request, size, live_server, certificate):
    services.certificate_suspend(certificate=certificate, reason="Under review")

    page, response = open_verify_page(request, size, live_server, certificate.public_id)

    assert response.status == 200
    banner = page.locator("#status-banner").inner_text()
    assert banner.startswith("Suspended") and "Under review" in banner
    assert page.locator("#checks li", has_text="not suspended").locator(".tag").inner_text() == "failed"
    assert page.locator("#checks li", has_text="not revoked").locator(".tag").inner_text() == "passed"
    assert page.evaluate(OVERFLOW) == 0


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("debug", [False, True], ids=["production", "debug"])
def test_a_mistyped_link_gets_our_404_in_the_site_layout(request, size, debug, live_server, certificate, settings):
    settings.DEBUG = debug

    page, response = open_verify_page(request, size, live_server, certificate.public_id[:-3])

    assert response.status == 404
    assert page.get_by_role("heading", level=1).inner_text() == "Certificate not found"
    assert page.get_by_text("There is no public certificate with this id.").is_visible()
    assert page.get_by_role("navigation", name="Main").get_by_role("link", name="Shipwright").is_visible()
    assert "URLconf" not in page.content()
    assert page.evaluate(OVERFLOW) == 0


def test_the_verifier_downloaded_from_the_page_checks_the_live_status_lists(page, live_server, certificate, tmp_path):
    """As the page says: download the credential, the keys and the verifier, install
    only what it names, and run it against the site's status list addresses."""
    page.goto(f"{live_server.url}/verify/{certificate.public_id}/")
    for link, name in (
        ("the signed credential", f"{certificate.public_id}.json"),
        ("the issuer's public keys", "did.json"),
        ("our verifier", standalone.FILENAME),
    ):
        with page.expect_download() as download:
            page.get_by_role("link", name=link).click()
        assert download.value.suggested_filename == name
        download.value.save_as(tmp_path / name)
    site = declared_only_site(tmp_path / "site")
    lists = ("--status-list", f"{live_server.url}/status/revocation")
    lists += ("--suspension-list", f"{live_server.url}/status/suspension")

    def verdict() -> str:
        run = run_standalone(
            tmp_path / standalone.FILENAME,
            site,
            f"{certificate.public_id}.json",
            "--did",
            "did.json",
            *lists,
            cwd=tmp_path,
        )
        return run.stdout.splitlines()[-1] if run.stdout else run.stderr

    assert verdict() == "verdict: valid"
    services.certificate_suspend(certificate=certificate, reason="Under review")
    assert verdict().startswith("verdict: NOT VALID: not suspended: suspended (bit")
    services.certificate_reinstate(certificate=certificate)
    assert verdict() == "verdict: valid"
