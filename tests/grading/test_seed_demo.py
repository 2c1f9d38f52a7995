"""`manage.py seed_demo` (issue 10): a demo cohort with attempt histories that look
like real grading output for the sample course's real checks, so the instructor's
cockpit is never empty on a fresh machine."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import User
from courses.models import Enrollment, QuizAttempt
from grading.demo import DEMO_DOMAIN
from grading.gradebook import CellStatus, course_at_risk, course_gradebook
from grading.management.commands.seed_demo import NOT_DEBUG
from grading.models import CheckResult, Submission
from labs.models import Lab


def seed(**options) -> str:
    out = io.StringIO()
    call_command("seed_demo", learners=12, stdout=out, **options)
    return out.getvalue()


def test_seeding_twice_creates_the_cohort_once(sample_course, settings):
    settings.DEBUG = True
    assert "Seeded 12 demo learner(s)" in seed()
    counts = (
        User.objects.count(),
        Submission.objects.count(),
        CheckResult.objects.count(),
        QuizAttempt.objects.count(),
    )
    assert "already exist: nothing to do" in seed()
    assert (
        User.objects.count(),
        Submission.objects.count(),
        CheckResult.objects.count(),
        QuizAttempt.objects.count(),
    ) == counts


def test_it_refuses_without_debug_unless_forced(sample_course, settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match=re.escape(NOT_DEBUG)):
        seed()
    assert not User.objects.filter(email__endswith=DEMO_DOMAIN).exists()
    assert "Seeded 12" in seed(force=True)


def test_demo_accounts_are_marked_and_cannot_log_in(sample_course, settings):
    settings.DEBUG = True
    seed()
    demo = User.objects.filter(email__endswith=f"@{DEMO_DOMAIN}")
    assert demo.count() == 12
    assert not any(user.has_usable_password() for user in demo)
    assert Enrollment.objects.filter(user__in=demo, course=sample_course).count() == 12


def test_seeded_results_read_like_real_grading_of_each_lab_s_checks(sample_course, settings):
    settings.DEBUG = True
    seed()
    labs = {lab.pk: lab for lab in Lab.objects.filter(course=sample_course)}
    submissions = Submission.objects.filter(lab__course=sample_course).prefetch_related("check_results")
    assert submissions.count() > 12
    statuses = set()
    for submission in submissions:
        spec = labs[submission.lab_id].parsed_spec
        checks = list(submission.check_results.all())
        # Exactly the lab's checks, in its order, with its points and required flags.
        assert [c.name for c in checks] == [c.name for c in spec.checks]
        assert [(c.max_score, c.required) for c in checks] == [(c.points, c.required) for c in spec.checks]
        assert submission.score == sum(c.score for c in checks)
        required_ok = all(c.status == "passed" for c in checks if c.required)
        reaches = 100 * submission.score / submission.max_score >= spec.pass_mark
        assert submission.status == ("passed" if required_ok and reaches else "failed")
        assert all(c.output for c in checks) and all(c.hint_html == "" for c in checks if c.status == "passed")
        assert submission.result["tests"][0]["name"] == checks[0].name
        statuses.add(submission.status)
    assert statuses == {"passed", "failed"}
    # The cockpit has something to show: passes, fails, untouched labs, and learners at risk.
    book = course_gradebook(sample_course)
    seen = {cell.status for row in book.rows for cell in row.cells}
    assert {CellStatus.PASSED, CellStatus.FAILED, CellStatus.NOT_ATTEMPTED} <= seen
    risky = course_at_risk(sample_course)
    assert any(r.idle_days for r in risky) and any(r.repeated_check for r in risky)
