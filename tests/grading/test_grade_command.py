"""`manage.py grade` end to end: intake, the real Docker sandbox, checks, JSON."""

from __future__ import annotations

import io
import json

from django.core.management import call_command

from accounts.models import User
from certificates.models import Certificate
from grading.models import Submission
from tests.grading.tiny_lab import make_solution


def grade(*args: str) -> tuple[int, dict | None, str]:
    out, err = io.StringIO(), io.StringIO()
    code = 0
    import sys

    saved = sys.stderr
    sys.stderr = err
    try:
        call_command("grade", *args, stdout=out)
    except SystemExit as exc:
        code = exc.code
    finally:
        sys.stderr = saved
    text = out.getvalue()
    return code, (json.loads(text) if text.strip().startswith("{") else None), err.getvalue()


def by_name(document: dict) -> dict[str, dict]:
    return {test["name"]: test for test in document["tests"]}


def test_a_correct_solution_passes_with_the_contract_json(tiny_lab, tmp_path):
    code, document, _ = grade("tiny-course/tiny", str(make_solution(tmp_path, "correct")), "--json")
    assert code == 0
    assert document["status"] == "passed"
    assert document["score"] == document["max_score"] == 100.0
    assert document["lab"] == "tiny-course/tiny"
    assert set(document) >= {"submission", "tests", "stages", "duration_s", "timings", "provenance", "certificate"}
    assert document["provenance"]["image_digest"].startswith("sha256:")
    assert document["provenance"]["lab_hash"] == tiny_lab.content_hash
    assert len(document["provenance"]["source_sha256"]) == 64
    stage = document["stages"][0]
    assert stage["name"] == "run" and stage["exit_code"] == 0 and "done" in stage["output"]
    assert Submission.objects.get(pk=document["submission"]).user.email == "grader@shipwright.invalid"


def test_a_dishonest_solution_fails_the_named_checks(tiny_lab, tmp_path):
    code, document, _ = grade("tiny-course/tiny", str(make_solution(tmp_path, "dishonest")), "--json")
    assert code == 0 and document["status"] == "failed"
    tests = by_name(document)
    assert tests["predictions are accurate"]["status"] == "failed"
    assert "holdout accuracy in 0.50–0.55 (4 rows)" in tests["predictions are accurate"]["output"]
    assert tests["reported accuracy is honest"]["status"] == "failed"


def test_a_crash_fails_and_skips_what_depends_on_it(tiny_lab, tmp_path):
    code, document, _ = grade("tiny-course/tiny", str(make_solution(tmp_path, "crashes")), "--json")
    assert code == 0 and document["status"] == "failed"
    tests = by_name(document)
    assert tests["main.py exits 0"]["output"] == "main.py exited with code 1"
    assert "RuntimeError: boom" in document["stages"][0]["output"]
    assert tests["the answer loads"]["status"] == "skipped"
    assert tests["the answer loads"]["output"] == "skipped because run failed"


def test_a_hang_is_stopped_at_the_time_limit(tiny_lab, tmp_path):
    code, document, _ = grade("tiny-course/tiny", str(make_solution(tmp_path, "hangs")), "--json")
    assert code == 0 and document["status"] == "failed"
    assert by_name(document)["main.py exits 0"]["output"] == "main.py was stopped after 10 s (the time limit)"
    assert document["stages"][0]["timed_out"] is True


def test_printing_a_fake_result_changes_nothing(tiny_lab, tmp_path):
    code, document, _ = grade("tiny-course/tiny", str(make_solution(tmp_path, "spoofs")), "--json")
    assert code == 0 and document["status"] == "failed"
    assert by_name(document)["predictions are accurate"]["status"] == "failed"


def test_grading_for_a_learner_counts_toward_their_progress(tiny_lab, tmp_path):
    code, document, _ = grade(
        "tiny-course/tiny",
        str(make_solution(tmp_path, "correct")),
        "--json",
        "--user",
        "new@example.com",
        "--create-user",
    )
    assert code == 0 and document["status"] == "passed"
    user = User.objects.get(email="new@example.com")
    assert not user.has_usable_password()
    assert user.enrollments.filter(course__slug="tiny-course").exists()


def test_a_created_learner_gets_the_name_given_or_is_told_which_one_certificates_print(tiny_lab, tmp_path):
    source = str(make_solution(tmp_path, "correct"))
    code, document, _ = grade(
        "tiny-course/tiny", source, "--json", "--user", "named@example.com", "--create-user", "--name", "Nia Named"
    )
    assert code == 0 and document["certificate"]["url"].startswith("/verify/")
    assert Certificate.objects.get(user__email="named@example.com").holder_name == "Nia Named"

    # Without --name the operator is told (never silently) which name it prints.
    code, document, err = grade("tiny-course/tiny", source, "--json", "--user", "anon@example.com", "--create-user")
    assert code == 0 and document["certificate"] is not None
    assert "created learner anon@example.com; certificates will print the name 'anon'" in err
    assert "--name" in err


def test_an_existing_learner_without_a_name_earns_a_certificate_that_waits_for_it(tiny_lab, tmp_path, caplog):
    User.objects.create_user(email="old@example.com")  # an account from before sign-up asked for a name
    source = str(make_solution(tmp_path, "correct"))

    with caplog.at_level("WARNING", logger="certificates.services"):
        code, document, _ = grade("tiny-course/tiny", source, "--json", "--user", "old@example.com")

    assert code == 0 and document["status"] == "passed" and document["certificate"] is None
    assert "waits for the name to print on it" in caplog.text and "--name NAME" in caplog.text
    code, document, _ = grade("tiny-course/tiny", source, "--json", "--user", "old@example.com", "--name", "Olga Old")
    assert document["certificate"] is not None
    assert Certificate.objects.get(user__email="old@example.com").holder_name == "Olga Old"


def test_an_unknown_user_exits_2(tiny_lab, tmp_path):
    code, document, err = grade(
        "tiny-course/tiny", str(make_solution(tmp_path, "correct")), "--user", "nobody@example.com"
    )
    assert code == 2 and document is None
    assert "no user with e-mail 'nobody@example.com'" in err


def test_an_unknown_lab_exits_2(tiny_lab, tmp_path):
    code, _, err = grade("tiny-course/nope", str(tmp_path))
    assert code == 2 and "no lab 'tiny-course/nope'" in err


def test_a_rejected_archive_exits_2_with_one_line_and_grades_nothing(tiny_lab, tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_text("this is not a zip")
    code, document, err = grade("tiny-course/tiny", str(bad), "--json")
    assert code == 2 and document is None
    assert len(err.strip().splitlines()) == 1
    assert not Submission.objects.exists()


def test_an_unreachable_engine_is_retried_in_process_then_a_platform_error_exit_1(tiny_lab, tmp_path, monkeypatch):
    from grading import services

    monkeypatch.setattr(services, "IN_PROCESS_BACKOFF_S", 0.0)
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    code, document, err = grade("tiny-course/tiny", str(make_solution(tmp_path, "correct")), "--json")
    assert code == 1 and document["status"] == "error"
    submission = Submission.objects.get(pk=document["submission"])
    # Tried in this process, never left queued for a worker that may not exist.
    assert submission.status == Submission.Status.ERROR
    assert submission.attempts == services.IN_PROCESS_ATTEMPTS
    assert "Grading failed 3 times because of a platform problem" in submission.error_message
    assert err.strip().splitlines()[-1].startswith("grade: the platform could not grade: Grading failed 3 times")
    assert "Docker engine" in err


def test_grade_without_a_broker_or_engine_prints_the_error_json_not_a_traceback(transactional_db, tiny_lab, tmp_path):
    """`manage.py grade` on the embedded defaults (no Redis, a fresh var/ with no
    broker folders) when the engine is down: the contract's JSON and exit 1."""
    import os
    import subprocess
    import sys

    from django.db import connection

    from tests.grading.workers import REPO

    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": f"postgresql://{db['USER'] or 'postgres'}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": "",
        "SHIPWRIGHT_VAR_DIR": str(tmp_path / "fresh-var"),
        "DOCKER_HOST": "unix:///nonexistent/docker.sock",
    }
    run = subprocess.run(
        [sys.executable, "manage.py", "grade", "tiny-course/tiny", str(make_solution(tmp_path, "correct")), "--json"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1, run.stderr
    assert json.loads(run.stdout)["status"] == "error"
    assert "Traceback" not in run.stderr
    assert "grade: the platform could not grade" in run.stderr


def test_a_memory_hog_is_reported_as_the_memory_limit(tiny_lab, tmp_path):
    code, document, _ = grade("tiny-course/tiny", str(make_solution(tmp_path, "hog")), "--json")
    assert code == 0 and document["status"] == "failed"
    assert by_name(document)["main.py exits 0"]["output"] == "killed: the 256 MiB memory limit was reached"


def test_a_fork_bomb_is_contained_by_the_process_limit(tiny_lab, tmp_path):
    code, document, _ = grade("tiny-course/tiny", str(make_solution(tmp_path, "forks")), "--json")
    assert code == 0 and document["status"] == "failed"
    feedback = by_name(document)["main.py exits 0"]["output"]
    assert "limit of 64 processes and threads" in feedback, feedback


def test_a_flood_of_output_is_cut_keeping_head_and_tail(tiny_lab, tmp_path):
    code, document, _ = grade("tiny-course/tiny", str(make_solution(tmp_path, "floods")), "--json")
    assert code == 0 and document["status"] == "failed"
    output = document["stages"][0]["output"]
    assert output.startswith("line 0 ") and "line 99999 " in output
    assert len(output) < 1100 * 1024


def test_a_submission_too_big_for_the_workspace_fails_and_says_so(tiny_lab, tmp_path):
    folder = make_solution(tmp_path, "correct")
    (folder / "weights.bin").write_bytes(b"\0" * (80 * 1024 * 1024))  # the lab's workspace is 64 MB
    code, document, _ = grade("tiny-course/tiny", str(folder), "--json")
    assert code == 0 and document["status"] == "failed"
    assert by_name(document)["main.py exits 0"]["output"] == "the submission does not fit in the 64 MB workspace"
