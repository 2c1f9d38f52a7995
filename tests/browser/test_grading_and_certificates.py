"""Submitting from the browser, live grading, earning a certificate and an
employer checking it, with a real worker, Redis, Docker and Chromium."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
from django.core.management import call_command

from tests.browser.conftest import log_in
from tests.grading.tiny_lab import SOLUTIONS
from tests.grading.workers import REPO

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def zip_solution(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("solution/main.py", textwrap.dedent(SOLUTIONS[name]).lstrip())
    return path


def test_a_learner_submits_watches_grading_live_and_earns_a_certificate(
    page, browser, live_server, tiny_lab, learner, worker, tmp_path
):
    log_in(page, live_server, learner)
    page.goto(live_server.url + "/courses/tiny-course/")
    page.get_by_role("button", name="Enroll in this course").click()
    page.goto(live_server.url + "/labs/tiny-course/tiny/")
    page.get_by_label("Upload").set_input_files(str(zip_solution(tmp_path, "crashes")))
    page.get_by_role("button", name="Submit for grading").click()
    assert "/submissions/" in page.url
    # The page updates by itself until the verdict arrives.
    page.locator(".verdict").wait_for(timeout=120_000)
    assert "Failed" in page.locator(".verdict").inner_text()
    assert "main.py exited with code 1" in page.content()
    assert "RuntimeError: boom" in page.content()

    page.goto(live_server.url + "/labs/tiny-course/tiny/")
    page.get_by_label("Upload").set_input_files(str(zip_solution(tmp_path, "correct")))
    page.get_by_role("button", name="Submit for grading").click()
    page.locator(".verdict").wait_for(timeout=120_000)
    assert "Passed" in page.locator(".verdict").inner_text()
    # The pass completed the course: the page that swapped in the verdict says so, and
    # shows the certificate once the signing worker has issued it (no reload).
    page.locator("#certificate-moment").wait_for()
    page.locator("#certificate-moment").get_by_role("link", name="Add to LinkedIn profile").wait_for()

    page.goto(live_server.url + "/dashboard/")
    verify_link = page.get_by_role("link", name="Verify link")
    href = verify_link.get_attribute("href")
    assert href.startswith("/verify/")

    # An employer, with no account, opens the URL.
    employer = browser.new_context().new_page()
    employer.goto(live_server.url + href)
    banner = employer.locator("#status-banner").inner_text()
    assert "Valid certificate" in banner
    assert "Ada Learner" in employer.content() and learner.email not in employer.content()

    public_id = href.strip("/").split("/")[1]
    call_command("revoke_certificate", public_id, "--reason", "Academic misconduct")
    employer.reload()
    assert "Revoked" in employer.locator("#status-banner").inner_text()
    assert "Academic misconduct" in employer.content()

    # A tampered credential file fails the offline verifier.
    credential = json.loads(employer.request.get(f"{live_server.url}/verify/{public_id}/credential.json").body())
    did = employer.request.get(f"{live_server.url}/.well-known/did.json").body()
    credential["credentialSubject"]["name"] = "Somebody Else"
    (tmp_path / "credential.json").write_text(json.dumps(credential))
    (tmp_path / "did.json").write_bytes(did)
    run = subprocess.run(
        [sys.executable, "-m", "certificates.verifier", "credential.json", "--did", "did.json", "--offline"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
    )
    assert run.returncode == 1 and "signature valid" in run.stdout
    employer.context.close()


def test_another_learner_gets_404_for_my_submission(page, live_server, tiny_lab, learner, other_learner, tmp_path):
    from grading import services
    from grading.intake import snapshot_from_directory
    from tests.grading.tiny_lab import make_solution

    snapshot = snapshot_from_directory(
        make_solution(tmp_path, "correct"), dest_dir=services.snapshot_dir(), limits=services.intake_limits()
    )
    submission = services.submission_create(user=learner, lab=tiny_lab, snapshot=snapshot, enqueue=False)
    log_in(page, live_server, other_learner)
    response = page.goto(live_server.url + f"/submissions/{submission.pk}/")
    assert response.status == 404
