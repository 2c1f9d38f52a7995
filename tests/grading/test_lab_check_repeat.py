"""`manage.py lab_check --repeat N` (issue 10): a grader whose verdict changes
between runs of the same solution is reported, and the command fails; a stable
one passes. Graded for real in Docker, with the tiny lab."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from courses.importer import content_import
from tests.grading.tiny_lab import LAB_YAML, PROBE, SOLUTIONS, make_tiny_course, write

# The probe says the answer loaded on a coin toss: the grader itself is flaky.
FLAKY_PROBE = PROBE.replace(
    'out["loaded"] = True', 'out["loaded"] = True if random.SystemRandom().random() < 0.5 else "flaky"'
)
FLAKY_PROBE = "import random\n" + FLAKY_PROBE


@pytest.fixture
def content(db, tmp_path):
    root = make_tiny_course(tmp_path / "content")
    lab = root / "tiny-course/labs/tiny"
    write(lab / "lab.yaml", LAB_YAML + "reference: hidden/reference\n")
    write(lab / "hidden/reference/main.py", SOLUTIONS["correct"])
    return root


def lab_check(*args: str) -> tuple[str, CommandError | None]:
    out = io.StringIO()
    try:
        call_command("lab_check", "tiny-course/tiny", *args, stdout=out)
    except CommandError as exc:
        return out.getvalue(), exc
    return out.getvalue(), None


def test_a_stable_grader_passes_every_repeat(content):
    content_import(content)
    out, error = lab_check("--repeat", "3")
    assert error is None, out
    assert "  ok   hidden/reference: passed 100/100 (expected passed)" in out
    assert "3 runs: passed 3/3" in out
    assert "UNSTABLE" not in out
    assert "Every check gave the same verdict in all 3 runs." in out


def test_a_check_that_passes_at_random_is_reported_and_fails_the_command(content):
    assert 'out["loaded"] = True if' in FLAKY_PROBE
    write(content / "tiny-course/labs/tiny/hidden/probe.py", FLAKY_PROBE)
    content_import(content)
    # 12 tosses all landing alike has a chance of 1 in 2,048.
    out, error = lab_check("--repeat", "12")
    assert error is not None, out
    assert "changed between runs of the same solution (a flaky grader)" in str(error)
    unstable = [line for line in out.splitlines() if line.startswith("  UNSTABLE")]
    assert len(unstable) == 1, out
    assert unstable[0].startswith("  UNSTABLE hidden/reference: check 'the answer loads': failed ")
    assert "passed " in unstable[0] and unstable[0].endswith("/12")
    # The verdict itself stays stable (the check is worth 20 of 100, not required).
    assert "12 runs: passed 12/12" in out


def test_without_repeat_the_output_is_as_before(content):
    content_import(content)
    out, error = lab_check()
    assert error is None, out
    assert out.splitlines() == [
        "tiny-course/tiny:",
        "  ok   hidden/reference: passed 100/100 (expected passed)",
        "Every reference and variant got its declared verdict.",
    ]


def test_a_repeat_below_one_is_refused(content):
    content_import(content)
    with pytest.raises(CommandError, match="--repeat must be at least 1, not 0"):
        call_command("lab_check", "tiny-course/tiny", "--repeat", "0")


def test_cases_graded_at_once_are_reported_in_the_labs_order(content):
    """`--jobs 2` grades two cases at a time; the report is the one `--jobs 1` gives."""
    lab = content / "tiny-course/labs/tiny"
    write(lab / "hidden/variants/dishonest/main.py", SOLUTIONS["dishonest"])
    write(lab / "hidden/variants/crashes/main.py", SOLUTIONS["crashes"])
    write(
        lab / "lab.yaml",
        LAB_YAML
        + "reference: hidden/reference\n"
        + "variants:\n"
        + "  - {path: hidden/variants/dishonest, expect: failed, failing: [predictions are accurate]}\n"
        + "  - {path: hidden/variants/crashes, expect: failed, failing: [main.py exits 0]}\n",
    )
    content_import(content)
    together, error = lab_check("--jobs", "2")
    assert error is None, together
    lines = together.splitlines()
    assert [line.split(":")[0] for line in lines[1:4]] == [
        "  ok   hidden/reference",
        "  ok   hidden/variants/dishonest",
        "  ok   hidden/variants/crashes",
    ], together
    alone, error = lab_check("--jobs", "1")
    assert error is None, alone
    assert alone == together


def test_jobs_below_one_are_refused(content):
    content_import(content)
    with pytest.raises(CommandError, match="--jobs must be at least 1, not 0"):
        call_command("lab_check", "tiny-course/tiny", "--jobs", "0")
