"""Analytics for course staff (issue 10): the numbers a lab's and a course's pages
show, computed from seeded attempts on PostgreSQL, the SVG they are drawn with, and
who may open them."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from django.utils import timezone

from certificates.models import Certificate, SigningKey
from courses.models import CourseStaff, Enrollment, QuizAttempt
from grading import analytics, charts
from tests.factories import UserFactory
from tests.grading.factories import SubmissionFactory
from tests.grading.test_course_roles import ROLES, _as, people  # noqa: F401  (a fixture)

PASSED, FAILED, ERROR, SKIPPED = "passed", "failed", "error", "skipped"
EXITS = "main.py exits 0"
ACCURATE = "predictions are accurate"
HONEST = "reported accuracy is honest"
T0 = timezone.now() - timedelta(days=5)


def _attempt(user, lab, status, *, hours=0.0, score=None, checks=None, **extra):
    if score is None:
        score = 100.0 if status == PASSED else 40.0
    return SubmissionFactory(
        user=user,
        lab=lab,
        status=status,
        score=None if status == ERROR else score,
        at=T0 + timedelta(hours=hours),
        checks=checks,
        **extra,
    )


@pytest.fixture
def cohort(tiny_lab):
    """Four learners' histories on the tiny lab (and noise that must not count)."""
    ada, bo, cy, di = (UserFactory(email=f"{name}@example.com") for name in ("ada", "bo", "cy", "di"))
    fail_accuracy = {EXITS: PASSED, ACCURATE: FAILED, HONEST: FAILED}
    fail_exit = {EXITS: FAILED, ACCURATE: SKIPPED, HONEST: SKIPPED}
    all_pass = {EXITS: PASSED, ACCURATE: PASSED, HONEST: PASSED}
    # ada: fails on accuracy, a platform error (no attempt), passes after 2 hours.
    _attempt(ada, tiny_lab, FAILED, hours=0, checks=fail_accuracy)
    _attempt(ada, tiny_lab, ERROR, hours=1)
    _attempt(ada, tiny_lab, PASSED, hours=2, checks=all_pass)
    # bo: passes at once.
    _attempt(bo, tiny_lab, PASSED, hours=0, score=80, checks=all_pass)
    # cy: three failures; the first one does not even run.
    _attempt(cy, tiny_lab, FAILED, hours=0, score=0, checks=fail_exit)
    _attempt(cy, tiny_lab, FAILED, hours=1, score=20, checks=fail_accuracy)
    _attempt(cy, tiny_lab, FAILED, hours=2, score=20, checks=fail_accuracy)
    # di: fails, passes two days later, then tries again and fails (after the pass: no attempt number).
    _attempt(di, tiny_lab, FAILED, hours=0, checks=fail_accuracy)
    _attempt(di, tiny_lab, PASSED, hours=48, score=90, checks=all_pass)
    _attempt(di, tiny_lab, FAILED, hours=50, score=60, checks=fail_accuracy)
    # Course staff's own test runs are not the cohort's.
    teacher = UserFactory(email="teacher@example.com")
    CourseStaff.objects.create(user=teacher, course=tiny_lab.course, role="instructor")
    _attempt(teacher, tiny_lab, FAILED, checks=fail_exit)
    return {"ada": ada, "bo": bo, "cy": cy, "di": di, "teacher": teacher}


def test_pass_rate_by_attempt_counts_attempts_up_to_the_first_pass(cohort, tiny_lab):
    stats = analytics.lab_analytics(tiny_lab)
    rates = {r.label: (r.attempts, r.passed) for r in stats.pass_rate_by_attempt}
    # Attempt 1: ada, bo, cy, di (bo passed). Attempt 2: ada and di passed, cy failed. Attempt 3: cy.
    assert rates == {"1": (4, 1), "2": (3, 2), "3": (1, 0)}
    assert (stats.learners, stats.learners_passed, stats.attempts) == (
        4,
        3,
        9,
    )  # graded submissions, the one after di passed included


def test_best_scores_and_time_to_pass_are_per_learner(cohort, tiny_lab):
    stats = analytics.lab_analytics(tiny_lab)
    bins = dict(stats.score_bins)
    # Best: ada 100, bo 80, cy 20, di 90 (the later 60 does not lower it).
    assert (bins["90–100%"], bins["80–90%"], bins["20–30%"], sum(bins.values())) == (2, 1, 1, 4)
    times = dict(stats.time_to_pass)
    assert (times["< 1 h"], times["1–6 h"], times["1–3 days"], sum(times.values())) == (1, 1, 1, 3)
    assert stats.median_time_to_pass_s == 2 * 3600


def test_checks_failing_first_and_by_attempt(cohort, tiny_lab):
    checks = {c.name: c for c in analytics.lab_analytics(tiny_lab).checks}
    # Failed attempts: ada#1, cy#1 (exit), cy#2, cy#3, di#1 -> accuracy fails first four times.
    assert checks[ACCURATE].fails_first == 4
    assert checks[EXITS].fails_first == 1
    assert checks[HONEST].fails_first == 0
    # On attempt 1 the accuracy check failed for ada and di, passed for bo and was skipped for cy.
    assert checks[ACCURATE].fail_share("1") == pytest.approx(2 / 4)
    assert checks[ACCURATE].fail_share("3") == 1.0
    assert checks[EXITS].fail_share("2") == 0.0
    assert checks["the answer loads"].fail_share("1") is None  # no result recorded for it


def test_flip_rate_counts_checks_that_changed_verdict_on_the_same_snapshot(tiny_lab):
    ada, bo = UserFactory(), UserFactory()
    same = "a" * 64
    # The same files graded twice by the same grader: the accuracy check flipped, the exit check did not.
    _attempt(ada, tiny_lab, FAILED, snapshot_sha256=same, checks={EXITS: PASSED, ACCURATE: FAILED})
    _attempt(ada, tiny_lab, PASSED, hours=1, snapshot_sha256=same, checks={EXITS: PASSED, ACCURATE: PASSED})
    # Another learner resubmitting identical bytes three times, never flipping.
    for hour in range(3):
        _attempt(bo, tiny_lab, FAILED, hours=hour, snapshot_sha256="b" * 64, checks={EXITS: PASSED, ACCURATE: FAILED})
    # A new grader version may legitimately change a verdict: not a flip.
    _attempt(bo, tiny_lab, PASSED, hours=4, snapshot_sha256="b" * 64, lab_hash="new", checks={ACCURATE: PASSED})
    checks = {c.name: c for c in analytics.lab_analytics(tiny_lab).checks}
    assert (checks[ACCURATE].snapshots_regraded, checks[ACCURATE].snapshots_flipped) == (2, 1)
    assert checks[ACCURATE].flip_rate == 0.5
    assert checks[EXITS].flip_rate == 0.0
    assert checks[HONEST].flip_rate is None


def test_flip_rate_counts_the_verdicts_a_regrade_replaced(tiny_lab):
    from grading.models import ResultHistory

    ada, bo = UserFactory(), UserFactory()
    # Graded once (accuracy passed), then regraded by the same grader: it now fails.
    flipped = _attempt(ada, tiny_lab, FAILED, snapshot_sha256="c" * 64, checks={EXITS: PASSED, ACCURATE: FAILED})
    lab_hash = flipped.lab_hash
    ResultHistory.objects.create(
        submission=flipped,
        kind=ResultHistory.Kind.REGRADE,
        previous_status=PASSED,
        previous_checks=[{"name": EXITS, "status": PASSED}, {"name": ACCURATE, "status": PASSED}],
        previous_lab_hash=lab_hash,
        status=FAILED,
    )
    # A regrade after the lab changed may change a verdict: not a flip.
    changed = _attempt(bo, tiny_lab, FAILED, snapshot_sha256="d" * 64, checks={EXITS: PASSED, ACCURATE: FAILED})
    ResultHistory.objects.create(
        submission=changed,
        kind=ResultHistory.Kind.REGRADE,
        previous_status=PASSED,
        previous_checks=[{"name": ACCURATE, "status": PASSED}],
        previous_lab_hash="an older version",
        status=FAILED,
    )

    checks = {c.name: c for c in analytics.lab_analytics(tiny_lab).checks}

    assert (checks[ACCURATE].snapshots_regraded, checks[ACCURATE].snapshots_flipped) == (1, 1)
    assert (checks[EXITS].snapshots_regraded, checks[EXITS].snapshots_flipped) == (1, 0)


def test_queue_wait_and_run_time_are_medians_per_day(tiny_lab):
    now = timezone.now()
    learner = UserFactory()
    for wait, run in [(2, 10), (4, 30), (60, 20)]:
        s = _attempt(learner, tiny_lab, FAILED)
        created = now - timedelta(hours=1)
        type(s).objects.filter(pk=s.pk).update(
            created_at=created,
            started_at=created + timedelta(seconds=wait),
            finished_at=created + timedelta(seconds=wait + run),
        )
    regrade = _attempt(learner, tiny_lab, FAILED, low_priority=True)
    type(regrade).objects.filter(pk=regrade.pk).update(started_at=now, finished_at=now)
    days = analytics.lab_analytics(tiny_lab, now=now).days
    assert len(days) == analytics.DAYS
    today = days[-1]
    assert (today.submissions, today.median_wait_s, today.median_run_s) == (3, 4.0, 20.0)
    assert all(d.submissions == 0 and d.median_wait_s is None for d in days[:-1])


def test_course_funnel_counts_enrolled_learners_at_each_step(cohort, tiny_lab):
    course = tiny_lab.course
    module = tiny_lab.module
    module.quiz_pass_mark = 80
    module.save()
    for name in ("ada", "bo", "cy", "di"):
        Enrollment.objects.create(user=cohort[name], course=course)
    outsider = UserFactory()  # passed the lab without enrolling: counted nowhere
    _attempt(outsider, tiny_lab, PASSED)
    for name, passed in [("ada", True), ("bo", True), ("cy", False), ("di", True)]:
        QuizAttempt.objects.create(user=cohort[name], module=module, correct=4 if passed else 1, total=5, passed=passed)
    key = SigningKey.objects.create(key_id="key-1", public_key_multibase="z6Mk-test")
    for index, (name, status) in enumerate([("ada", "valid"), ("bo", "revoked")]):
        Certificate.objects.create(
            public_id=f"cert-{index}",
            user=cohort[name],
            course=course,
            title="Tiny certificate",
            holder_name=name,
            issued_at=timezone.now(),
            credential="{}",
            signing_key=key,
            status_index=index,
            status=status,
        )
    steps = analytics.course_funnel(course)
    assert [(s.kind, s.learners) for s in steps] == [("enrolled", 4), ("quiz", 3), ("lab", 3), ("certified", 1)]
    assert steps[1].label == f"Quiz passed: {module.title}"
    assert steps[2].label == f"Lab passed: {tiny_lab.title}"


# --- The SVG ---------------------------------------------------------------------------

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = '<script>alert(1)</script>" onload="alert(2)'


def _all_charts() -> list[str]:
    return [
        charts.bar_chart(title="T", desc="D", labels=["1", HOSTILE], values=[50.0, 25.0], y_max=100, unit="%"),
        charts.hbar_chart(title="Funnel", desc=HOSTILE, labels=["Enrolled", HOSTILE], values=[10, 4], of=10),
        charts.heatmap(title="H", desc="D", rows=[HOSTILE, "b"], columns=["1", "2"], values=[[0.5, None], [0, 1]]),
        charts.line_chart(
            title=HOSTILE,
            desc="D",
            labels=["01 Jan", "02 Jan", "03 Jan"],
            series=[charts.Series("wait", [1.0, None, 3.0]), charts.Series(HOSTILE, [2.0, 2.5, None])],
        ),
        charts.bar_chart(title="Empty", desc="nothing yet", labels=[], values=[]),
    ]


@pytest.mark.parametrize("index", range(5))
def test_every_chart_is_well_formed_accessible_and_inert(index):
    svg = ET.fromstring(_all_charts()[index])  # raises on malformed XML
    assert svg.tag == f"{SVG}svg" and svg.get("role") == "img"
    title, desc = svg.find(f"{SVG}title"), svg.find(f"{SVG}desc")
    assert title is not None and desc is not None
    assert svg.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
    allowed = {"svg", "title", "desc", "text", "rect", "line", "polyline", "circle"}
    for element in svg.iter():
        assert element.tag.removeprefix(SVG) in allowed
        assert not any(name.lower().startswith("on") or "href" in name for name in element.attrib)


def test_hostile_labels_are_text_not_markup():
    for markup in _all_charts()[:4]:
        assert "<script" not in markup and "&lt;script&gt;" in markup
        assert not [e for e in ET.fromstring(markup).iter() if "onload" in e.attrib]
        texts = [e.text or "" for e in ET.fromstring(markup).iter()]
        assert any("<script>" in text or "…" in text for text in texts)


def test_nice_axis_tops():
    assert [charts.nice_max(v) for v in (0, 0.3, 7, 12, 100, 101)] == [1, 0.5, 10, 20, 100, 200]
    assert [charts.count_axis_top(v) for v in (0, 3, 5, 13, 40)] == [4, 4, 8, 20, 40]


# --- The pages -------------------------------------------------------------------------

PAGES = [
    "/instructor/labs/tiny-course/tiny/analytics/",
    "/instructor/courses/tiny-course/analytics/",
    "/instructor/labs/tiny-course/tiny/similar/",
]
SEE = {"instructor", "ta", "auditor", "superuser"}


@pytest.mark.parametrize("url", PAGES)
def test_only_the_course_s_staff_open_the_analytics_pages(client, people, cohort, url):  # noqa: F811
    outcomes = {}
    for role in ROLES:
        client.logout()
        response = _as(client, people, role).get(url)
        if response.status_code == 302:
            outcomes[role] = "log in" if response["Location"].startswith("/accounts/login/") else 302
        else:
            outcomes[role] = "allowed" if response.status_code == 200 else response.status_code
    assert outcomes == {
        role: "allowed" if role in SEE else ("log in" if role == "anonymous" else 404) for role in ROLES
    }


def test_the_lab_analytics_page_shows_charts_and_their_numbers(client, people, cohort):  # noqa: F811
    client.force_login(people["auditor"])
    page = client.get(PAGES[0]).content.decode()
    assert page.count('role="img"') == 6
    for heading in (
        "Pass rate by attempt number",
        "Distribution of best scores",
        "Checks that fail first",
        "Time from first submission to pass",
        "Queue wait and run time over days",
    ):
        assert heading in page
    assert "4 learners made 9 graded attempts; 3 passed" in page
    assert "<script" not in page.split("</head>")[1]


def test_the_course_page_and_the_lab_page_link_the_analytics_for_staff_only(client, people, cohort):  # noqa: F811
    client.force_login(people["ta"])
    assert "/instructor/courses/tiny-course/analytics/" in client.get("/courses/tiny-course/").content.decode()
    lab_page = client.get("/labs/tiny-course/tiny/").content.decode()
    assert PAGES[0] in lab_page and PAGES[2] in lab_page
    client.force_login(people["learner"])
    assert "/analytics/" not in client.get("/courses/tiny-course/").content.decode()
