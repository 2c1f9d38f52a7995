"""Intake off the request path, in the browser: the upload is answered at once as
received, and the page itself turns into intake's verdict (a refusal in the same
words the form used to show), with a real intake worker, Redis and Chromium."""

from __future__ import annotations

import io
import zipfile

import pytest

from tests.browser.conftest import log_in
from tests.grading.workers import Worker

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def intake_worker(worker_env):
    worker = Worker(worker_env, queues=[worker_env["SHIPWRIGHT_INTAKE_QUEUE"]])
    yield worker
    worker.stop()


def test_a_refused_upload_is_received_at_once_and_the_page_then_shows_why(
    page, live_server, tiny_lab, learner, intake_worker, tmp_path
):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../../etc/evil", "x")
    upload = tmp_path / "solution.zip"
    upload.write_bytes(buffer.getvalue())

    log_in(page, live_server, learner)
    page.goto(live_server.url + "/courses/tiny-course/")
    page.get_by_role("button", name="Enroll in this course").click()
    page.goto(live_server.url + "/labs/tiny-course/tiny/")
    page.get_by_label("Upload").set_input_files(str(upload))
    page.get_by_role("button", name="Submit for grading").click()
    assert "/submissions/" in page.url
    # No reload: the status part polls until intake has answered.
    page.locator(".status-rejected").wait_for(timeout=120_000)
    assert 'archive entry "../../etc/evil" escapes the submission' in page.locator("#submission-status").inner_text()
    page.get_by_role("link", name="Back to the lab to submit again").click()
    assert page.url.endswith("/labs/tiny-course/tiny/")
