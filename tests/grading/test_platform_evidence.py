"""Issue 8, 1b: evidence the grader lost is the platform's failure, never the
learner's; and a correct solution passes on a loaded machine."""

from __future__ import annotations

import subprocess
import sys

import docker
import pytest

from grading import services
from grading.models import Submission
from grading.sandbox import Sandbox
from tests.conftest import CONTENT
from tests.grading.test_grade_command import by_name, grade
from tests.grading.tiny_lab import make_solution

pytestmark = pytest.mark.docker


def test_a_grader_output_holder_that_died_is_retried_not_charged_to_the_learner(
    tiny_lab, learner, tmp_path, monkeypatch
):
    """The capstone's 'no observations were recorded' under load: the volume's holder
    had stopped, so the probe wrote into a private tmpfs that vanished with it."""
    fresh_grader_out = Sandbox._fresh_grader_out

    def holder_dies_after_start(self: Sandbox, **kwargs) -> str:
        volume = fresh_grader_out(self, **kwargs)
        docker.from_env().containers.get(self._grader_out_holder).kill()
        return volume

    monkeypatch.setattr(Sandbox, "_fresh_grader_out", holder_dies_after_start)
    from grading.intake import IntakeLimits, snapshot_from_path_or_url

    snapshot = snapshot_from_path_or_url(
        str(make_solution(tmp_path, "correct")),
        lab_kind=tiny_lab.kind,
        dest_dir=services.snapshot_dir(),
        limits=IntakeLimits(),
    )
    submission = services.submission_create(user=learner, lab=tiny_lab, snapshot=snapshot, enqueue=False)
    outcome = services.submission_grade(submission.pk, worker="test")
    submission.refresh_from_db()
    assert isinstance(outcome, services.Retry)
    assert submission.status == Submission.Status.QUEUED
    assert submission.error_message == services.GRADING_DELAYED
    assert "grader output holder" in submission.error_detail
    assert not submission.check_results.exists()


def test_a_correct_ci_workflow_passes_while_two_processes_keep_the_cores_busy(sample_course, tmp_path):
    reference = CONTENT / "mlops-foundations/labs/ci-workflow/hidden/reference"
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        code, document, err = grade("mlops-foundations/ci-workflow", str(reference), "--json")
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    assert code == 0, err
    failing = {name: test["output"] for name, test in by_name(document).items() if test["status"] != "passed"}
    assert document["status"] == "passed", failing
