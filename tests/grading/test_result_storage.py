"""Each stage's output is stored once, and every reader still gets the contract's
JSON (issue 8, section 5)."""

from __future__ import annotations

import json

from django.db import connection

from accounts.services import api_token_create
from grading.models import StageRun, Submission
from tests.grading.test_grade_command import grade
from tests.grading.tiny_lab import make_solution


def stored_result_bytes(submission_id) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT octet_length(result::text) FROM grading_submission WHERE id = %s", [submission_id])
        return cursor.fetchone()[0]


def test_a_flood_of_output_is_stored_once_and_every_reader_gets_it_in_full(tiny_lab, tmp_path, client, learner):
    code, document, _ = grade(
        "tiny-course/tiny", str(make_solution(tmp_path, "floods")), "--json", "--user", learner.email
    )
    assert code == 0 and document["status"] == "failed"
    submission = Submission.objects.get(pk=document["submission"])
    stage = StageRun.objects.get(submission=submission, name="run")
    assert len(stage.output) > 1000 * 1024
    # The stored document holds no second copy: the flood stays in the stage row.
    assert stored_result_bytes(submission.pk) < 16 * 1024
    assert "output" not in submission.result["stages"][0]

    # manage.py grade --json printed it in full...
    assert document["stages"][0]["output"] == stage.output
    # ... and so does the API status endpoint, with the same document otherwise.
    _, token = api_token_create(user=learner, name="CI")
    served = client.get(f"/api/v1/submissions/{submission.pk}", HTTP_AUTHORIZATION=f"Bearer {token}").json()
    assert served == document
    # ... and the learner's own page.
    client.force_login(learner)
    page = client.get(f"/submissions/{submission.pk}/").content.decode()
    assert "line 99999 " in page


def test_a_grader_owned_stage_output_stays_hidden_in_the_served_document(tiny_lab, tmp_path, learner, client):
    code, document, _ = grade("tiny-course/tiny", str(make_solution(tmp_path, "correct")), "--json")
    assert code == 0 and document["status"] == "passed"
    submission = Submission.objects.get(pk=document["submission"])
    probe = StageRun.objects.get(submission=submission, name="probe")
    assert probe.grader
    served = {stage["name"]: stage for stage in document["stages"]}
    assert served["probe"]["output"] == "(output of a grader-owned stage is not shown: it could reveal hidden tests)"
    assert "done" in served["run"]["output"]
    assert list(served["run"]) == ["name", "command", "exit_code", "timed_out", "duration_s", "output"]


def test_a_result_document_written_with_outputs_is_stored_without_them(tiny_lab, learner):
    submission = Submission.objects.create(
        user=learner, lab=tiny_lab, source_kind="archive", snapshot_path="x.tar.gz", snapshot_sha256="a" * 64
    )
    submission.result = {"status": "failed", "stages": [{"name": "run", "output": "x" * 100_000}]}
    submission.save()
    submission.refresh_from_db()
    assert submission.result == {"status": "failed", "stages": [{"name": "run"}]}
    assert len(json.dumps(submission.result)) < 100
