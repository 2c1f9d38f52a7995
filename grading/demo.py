"""A demo cohort for a fresh machine (`make run` → `manage.py seed_demo`), so the
instructor's cockpit (gradebook, at-risk list, analytics) has something to show.

Each demo learner gets an attempt history that reads like real grading output for
the real checks of each lab: the check names, points and required flags come from
the lab's spec in the database, a failing attempt fails the checks one of the lab's
declared wrong variants fails (or one required check), the verdict and score come
from the judges' own rule (`grading.judges.verdict`), and feedback is worded as the
judge of that check kind words it. Knowledge check attempts and lessons read go with
it. Histories are spread over the past weeks and are the same on every machine (a
seeded random generator per learner).

Demo accounts are marked: e-mails `demo-NN@demo.shipwright.invalid` (a reserved
top-level domain: no mail can reach anyone) and no usable password.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from courses.markdown import render
from courses.models import Course, Enrollment, LessonProgress, QuizAttempt
from labs.lab_spec import LabSpec
from labs.models import Lab

from .judges import verdict
from .judges.base import CheckOutcome
from .models import CheckResult, StageRun, Submission
from .services import submission_result_json

DEMO_DOMAIN = "demo.shipwright.invalid"
DEFAULT_LEARNERS = 40

_FIRST = [
    "Amara", "Bruno", "Chen", "Dalia", "Emil", "Farah", "Goran", "Hana", "Ines", "Jonas",
    "Keiko", "Luca", "Maya", "Nikhil", "Olga", "Pablo", "Quinn", "Rosa", "Samir", "Tess",
]  # fmt: skip
_LAST = [
    "Okafor", "Silva", "Wei", "Haddad", "Novak", "Rahman", "Petrov", "Sato", "Moreau", "Berg",
    "Tanaka", "Rossi", "Cohen", "Iyer", "Kowalski", "Garcia", "Murphy", "Lindqvist", "Aziz", "Meyer",
]  # fmt: skip

# Personas by share of the cohort, in the order learners are numbered.
FINISHER, STEADY, STUCK, STALLED, NEW = "finisher", "steady", "stuck", "stalled", "new"
_PERSONAS = [(FINISHER, 0.2), (STEADY, 0.3), (STUCK, 0.25), (STALLED, 0.2), (NEW, 0.05)]


def demo_email(number: int) -> str:
    return f"demo-{number:02d}@{DEMO_DOMAIN}"


def persona_of(number: int, total: int) -> str:
    position, edge = (number - 1) / max(total, 1), 0.0
    for persona, share in _PERSONAS:
        edge += share
        if position < edge:
            return persona
    return _PERSONAS[-1][0]


def _feedback(check, passed: bool, rng: random.Random) -> str:
    """Feedback as the judge of this check kind words it (grading/judges/)."""
    kind = check.kind
    if kind == "exit_code":
        return "exited 0" if passed else f"{check.stage} exited with status 1; see its output"
    if kind == "files":
        paths = ", ".join(check.paths)
        return f"found {paths}" if passed else f"{check.paths[-1]} was not found after {check.stage}"
    if kind in ("accuracy", "http_accuracy"):
        value = rng.uniform(0.93, 0.98) if passed else rng.uniform(0.62, 0.89)
        return f"holdout accuracy {value:.4f} ({round(value * 114)} of 114 rows); needs ≥ {check.min:g}"
    if kind == "reported_metric":
        holdout = rng.uniform(0.93, 0.97)
        reported = holdout + (rng.uniform(-0.02, 0.02) if passed else rng.uniform(0.06, 0.07))
        return (
            f"{check.file or 'the run'} reports {check.field or 'its metric'} {reported:.4f}; the holdout gives {holdout:.4f} "
            f"(difference {abs(reported - holdout):.4f}, allowed {check.tolerance:g})"
        )
    if kind == "agreement":
        return f"the two runs agree on {1.0 if passed else rng.uniform(0.9, 0.97):.1%} of rows; needs ≥ {check.min:.0%}"
    if kind == "reference":
        return (
            f"{len(check.keys)} case(s) match the reference"
            if passed
            else f"{check.keys[0]}: your code gave a different value, which does not match the reference solution"
        )
    if kind == "latency":
        value = rng.uniform(8, 40) if passed else rng.uniform(120, 260)
        return f"p{check.percentile:g} latency {value:.1f} ms over 50 calls; needs ≤ {check.max_ms:g} ms"
    if kind == "http_ready":
        return "answered 200 after 2.1 s" if passed else "no answer within 20 s of start"
    if kind == "pytest":
        return "12 passed; coverage 78%" if passed else "2 failed, 10 passed (see the test output)"
    if passed:
        return "passed"
    return {
        "workflow": "no workflow runs `on` push or pull_request (found: workflow_dispatch)",
        "dockerfile": "the last USER is 'root', which is root",
        "requirements": "requirements.txt names tensorflow, which the lab image does not have",
        "secrets": "an AWS-style access key id in config.py, line 3",
        "audit_log": "audit.jsonl: 1 line holds the request's email",
        "http": "POST /predict with a row of 29 numbers answered 500 (expected a 4xx)",
        "observation": f"expected {getattr(check, 'key', 'it')} to hold, got False",
    }.get(kind, "failed")


@dataclass
class _Seeder:
    course: Course
    labs: list[Lab]
    now: datetime

    def _attempt(self, *, user, lab: Lab, spec: LabSpec, when: datetime, failing: set[str], rng: random.Random):
        """One finished submission with its stage and check rows, as the runner writes them."""
        outcomes = []
        for check in spec.checks:
            passed = check.name not in failing
            outcomes.append(
                CheckOutcome(
                    name=check.name,
                    status=CheckResult.Status.PASSED if passed else CheckResult.Status.FAILED,
                    score=check.points if passed else 0.0,
                    max_score=check.points,
                    required=check.required,
                    output=_feedback(check, passed, rng),
                    hint=check.hint if not passed else "",
                )
            )
        status, score, max_score = verdict(spec=spec, checks=outcomes)
        duration = rng.uniform(8, 40)
        notebook = lab.kind == Lab.Kind.NOTEBOOK
        started = when + timedelta(seconds=rng.uniform(1, 20))
        submission = Submission.objects.create(
            user=user,
            lab=lab,
            source_kind=Submission.SourceKind.NOTEBOOK if notebook else Submission.SourceKind.ARCHIVE,
            source_name=f"{lab.slug}.ipynb" if notebook else f"{lab.slug}.zip",
            snapshot_sha256=hashlib.sha256(f"{user.email}{lab.slug}{when}".encode()).hexdigest(),
            status=status,
            score=score,
            max_score=max_score,
            attempts=1,
            lab_hash=lab.content_hash,
            started_at=started,
        )
        submission.finished_at = started + timedelta(seconds=duration)
        stage_time = duration / max(len(spec.stages), 1)
        crashed = {c.stage for c in spec.checks if c.kind == "exit_code" and c.name in failing}
        for order, stage in enumerate(spec.stages):
            command = " ".join(stage.run or (stage.service.start if stage.service else [])) or f"({stage.probe})"
            StageRun.objects.create(
                submission=submission,
                order=order,
                name=stage.name,
                command=command[:500],
                status=StageRun.Status.RAN,
                grader=stage.grader_owned,
                exit_code=1 if stage.name in crashed else 0,
                duration_s=round(rng.uniform(0.5, 1.5) * stage_time, 2),
                output="Traceback (most recent call last):\n  ...\nValueError: could not convert string to float\n"
                if stage.name in crashed
                else "",
                summary="exited 1" if stage.name in crashed else "exited 0",
            )
        CheckResult.objects.bulk_create(
            CheckResult(
                submission=submission,
                order=order,
                name=outcome.name,
                status=outcome.status,
                score=outcome.score,
                max_score=outcome.max_score,
                required=outcome.required,
                output=outcome.output,
                hint_html=render(outcome.hint) if outcome.hint else "",
            )
            for order, outcome in enumerate(outcomes)
        )
        # created_at is auto_now_add: set the history's own time afterwards.
        Submission.objects.filter(pk=submission.pk).update(created_at=when, finished_at=submission.finished_at)
        submission.refresh_from_db()
        submission.result = submission_result_json(submission, timings={"intake_s": 0.1, "sandbox_start_s": 1.2})
        submission.save(update_fields=["result"])
        return submission

    def _failures(self, spec: LabSpec, rng: random.Random) -> list[set[str]]:
        """Sets of checks that fail together, as the lab's own wrong variants do; a
        single required check when the lab declares none."""
        sets = [set(v.failing) for v in spec.variants if v.expect == "failed" and v.failing]
        required = [c.name for c in spec.checks if c.required and c.points > 0]
        if not sets and required:
            sets = [{rng.choice(required)}]
        return sets or [set()]

    def _quiz(self, *, user, module, when: datetime, rng: random.Random) -> None:
        questions = list(module.questions.filter(published=True))
        if module.quiz_pass_mark is None or not questions:
            return
        for number in (1, 2):
            answers = {}
            for q in questions:
                right = rng.random() < (0.6 if number == 1 else 0.9)
                choices = len(q.choices_html) or 1
                answers[q.key] = q.answer if right or choices == 1 else (q.answer + 1) % choices
            correct = sum(answers[q.key] == q.answer for q in questions)
            passed = 100.0 * correct / len(questions) >= module.quiz_pass_mark
            attempt = QuizAttempt.objects.create(
                user=user,
                module=module,
                answers=answers,
                number=number,
                correct=correct,
                total=len(questions),
                passed=passed,
            )
            QuizAttempt.objects.filter(pk=attempt.pk).update(created_at=when + timedelta(minutes=10 * number))
            if passed:
                return

    def learner(self, number: int, total: int) -> None:
        User = get_user_model()
        rng = random.Random(f"{self.course.slug}:{number}")
        name = f"{_FIRST[(number - 1) % len(_FIRST)]} {_LAST[(number * 7) % len(_LAST)]}"
        user = User.objects.create_user(email=demo_email(number), password=None, display_name=name)
        persona = persona_of(number, total)
        start = self.now - timedelta(days=rng.uniform(24, 56))
        enrollment = Enrollment.objects.create(user=user, course=self.course)
        Enrollment.objects.filter(pk=enrollment.pk).update(created_at=start)
        graded = [lab for lab in self.labs if lab.gradeable]
        if persona == NEW or not graded:
            return
        reach = {
            FINISHER: len(graded),
            STEADY: rng.randint(2, max(2, len(graded) - 2)),
            STUCK: rng.randint(1, max(1, len(graded) - 3)),
            STALLED: rng.randint(1, 2),
        }[persona]
        # A stalled learner's history stops at a fifth to a half of the way to now
        # (12 days ago or more); everyone else's runs to the last few days.
        if persona == STALLED:
            end = start + (self.now - start) * rng.uniform(0.2, 0.5)
        else:
            end = self.now - timedelta(days=rng.uniform(0.2, 3))
        steps = min(reach + (1 if persona == STUCK else 0), len(graded))
        # The plan first (what the learner did, in order), then its times spread
        # from enrolling to the end of their history.
        plan: list[tuple[Lab, set[str] | None]] = []
        for index, lab in enumerate(graded[:steps]):
            failure_sets = self._failures(lab.parsed_spec, rng)
            if persona == STUCK and index == steps - 1:
                # Stuck: the same checks keep failing, attempt after attempt.
                stuck_on = rng.choice(failure_sets)
                plan += [(lab, stuck_on)] * rng.randint(3, 6)
                continue
            plan += [(lab, rng.choice(failure_sets)) for _ in range(rng.choices([0, 1, 2], weights=[5, 3, 2])[0])]
            plan.append((lab, set()))
        step = (end - start) / len(plan)
        seen_modules = set()
        when = start
        for position, (lab, failing) in enumerate(plan):
            when = start + step * (position + rng.uniform(0.3, 1.0))
            module = lab.module
            if module is not None and module.pk not in seen_modules:
                seen_modules.add(module.pk)
                LessonProgress.objects.bulk_create(
                    [LessonProgress(user=user, lesson=lesson) for lesson in module.lessons.filter(published=True)],
                    ignore_conflicts=True,
                )
                self._quiz(user=user, module=module, when=when - step / 3, rng=rng)
            self._attempt(user=user, lab=lab, spec=lab.parsed_spec, when=when, failing=failing or set(), rng=rng)
        LessonProgress.objects.filter(user=user).update(completed_at=start + (when - start) / 2)
        Enrollment.objects.filter(pk=enrollment.pk).update(last_activity_at=when)


def demo_cohort_seed(*, course: Course, learners: int = DEFAULT_LEARNERS, now: datetime | None = None) -> int:
    """Create the demo learners of `course` that do not exist yet, each with an
    enrollment and an attempt history; returns how many were created. Idempotent:
    an existing demo account (by e-mail) is left as it is, so a second run creates
    nothing. One transaction: nothing partial is written."""
    User = get_user_model()
    labs = list(Lab.objects.filter(course=course, published=True).select_related("module").order_by("order"))
    seeder = _Seeder(course=course, labs=labs, now=now or timezone.now())
    existing = set(User.objects.filter(email__endswith=f"@{DEMO_DOMAIN}").values_list("email", flat=True))
    created = 0
    with transaction.atomic():
        for number in range(1, learners + 1):
            if demo_email(number) in existing:
                continue
            seeder.learner(number, learners)
            created += 1
    return created
