"""The course gradebook (issue 10): learners by labs, best score and attempts per cell,
a status in words and symbols, filters and sorts as query parameters, CSV and JSON
exports; and the at-risk list. On real PostgreSQL."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from html import unescape

import pytest
from django.utils import timezone

from courses.models import CourseStaff, Enrollment
from grading.gradebook import BAD_SORT, BAD_STATUS, CellStatus, course_at_risk, course_gradebook
from grading.gradebook_views import BAD_NUMBER
from grading.models import CheckResult, Submission
from labs.models import Lab
from tests.factories import UserFactory
from tests.grading import test_course_roles as roles

people = roles.people  # the course-role personas, a fixture
ROLES, _as, _outcome = roles.ROLES, roles._as, roles._outcome

GRADEBOOK = "/instructor/courses/tiny-course/gradebook/"
JSON = "/instructor/courses/tiny-course/gradebook.json"
AT_RISK = "/instructor/courses/tiny-course/at-risk/"
CSV = "/instructor/courses/tiny-course/grades.csv"


def graded(user, lab, status="failed", score=40.0, max_score=100.0, days_ago=0.0, failing=()):
    """A submission as grading leaves it, `days_ago` days old, with a failed check row
    for each name in `failing`."""
    finished = status in Submission.FINISHED
    submission = Submission.objects.create(
        user=user,
        lab=lab,
        source_kind="archive",
        snapshot_sha256="a" * 64,
        status=status,
        score=score if status in ("passed", "failed") else None,
        max_score=max_score if status in ("passed", "failed") else None,
        finished_at=timezone.now() if finished else None,
    )
    for order, name in enumerate(failing):
        CheckResult.objects.create(
            submission=submission, order=order, name=name, status="failed", score=0, max_score=20, required=True
        )
    Submission.objects.filter(pk=submission.pk).update(created_at=timezone.now() - timedelta(days=days_ago))
    return submission


@pytest.fixture
def second_lab(tiny_lab):
    lab = Lab._base_manager.get(pk=tiny_lab.pk)  # the archives too: a whole copy
    lab.pk, lab.slug, lab.title, lab.order = None, "tiny-two", "Tiny two", tiny_lab.order + 1
    lab.save()
    return lab


@pytest.fixture
def cohort(tiny_lab, second_lab):
    """Five enrolled learners with known histories, and one who is not enrolled."""
    names = {
        "ann": "Ann Passer",
        "bob": "Bob Failer",
        "cy": "Cy Pending",
        "dee": "Dee Rejected",
        "eve": "Eve Nothing",
    }
    users = {key: UserFactory(email=f"{key}@example.com", display_name=name) for key, name in names.items()}
    for user in users.values():
        Enrollment.objects.create(user=user, course=tiny_lab.course)
    # Passed before failed: 80 % passed beats 90 % failed; three attempts.
    graded(users["ann"], tiny_lab, "failed", 40)
    graded(users["ann"], tiny_lab, "passed", 80)
    graded(users["ann"], tiny_lab, "failed", 90)
    graded(users["ann"], second_lab, "passed", 100)
    graded(users["bob"], tiny_lab, "failed", 40)
    graded(users["bob"], tiny_lab, "failed", 60)
    graded(users["cy"], tiny_lab, "failed", 50)
    graded(users["cy"], tiny_lab, "queued")
    graded(users["dee"], tiny_lab, "rejected")
    graded(users["dee"], tiny_lab, "error")
    graded(UserFactory(email="outsider@example.com"), tiny_lab, "passed", 100)
    return users


def cells(book, email):
    row = next(row for row in book.rows if row.email == email)
    return [(c.status, c.attempts, c.best_percent) for c in row.cells]


def test_each_cell_holds_the_best_attempt_the_attempt_count_and_the_status(cohort, tiny_lab):
    book = course_gradebook(tiny_lab.course)
    assert [lab.slug for lab in book.labs] == ["tiny", "tiny-two"]
    assert [row.email for row in book.rows] == [f"{k}@example.com" for k in ("ann", "bob", "cy", "dee", "eve")]
    nothing = (CellStatus.NOT_ATTEMPTED, 0, None)
    assert cells(book, "ann@example.com") == [(CellStatus.PASSED, 3, 80.0), (CellStatus.PASSED, 1, 100.0)]
    assert cells(book, "bob@example.com") == [(CellStatus.FAILED, 2, 60.0), nothing]
    assert cells(book, "cy@example.com") == [(CellStatus.IN_PROGRESS, 2, 50.0), nothing]
    # A rejected source is not an attempt; a platform error is one, but no verdict.
    assert cells(book, "dee@example.com") == [(CellStatus.NOT_ATTEMPTED, 1, None), nothing]
    assert cells(book, "eve@example.com") == [nothing, nothing]
    assert [row.labs_passed for row in book.rows] == [2, 0, 0, 0, 0]
    assert book.counts["tiny"][CellStatus.PASSED] == 1 and book.counts["tiny"][CellStatus.NOT_ATTEMPTED] == 2


def test_the_gradebook_takes_the_same_few_queries_for_many_learners(
    cohort, tiny_lab, second_lab, django_assert_max_num_queries
):
    with django_assert_max_num_queries(9) as few:
        course_gradebook(tiny_lab.course)
    for n in range(30):
        user = UserFactory(email=f"more{n}@example.com")
        Enrollment.objects.create(user=user, course=tiny_lab.course)
        graded(user, tiny_lab, "failed", n)
        graded(user, second_lab, "passed", 90)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert len(course_gradebook(tiny_lab.course).rows) == 35


def test_filters_by_text_and_by_a_lab_s_status(cohort, tiny_lab):
    course = tiny_lab.course
    assert [r.email for r in course_gradebook(course, text="PASSER").rows] == ["ann@example.com"]
    assert [r.email for r in course_gradebook(course, text="cy@").rows] == ["cy@example.com"]
    failed = course_gradebook(course, lab="tiny", status="failed")
    assert [r.email for r in failed.rows] == ["bob@example.com"]
    not_passed = course_gradebook(course, lab="tiny", status="not_passed")
    assert [r.email for r in not_passed.rows] == [f"{k}@example.com" for k in ("bob", "cy", "dee", "eve")]
    assert course_gradebook(course, lab="tiny-two", status="passed", text="bob").rows == []


def test_sorts_by_any_column_with_unscored_cells_last(cohort, tiny_lab):
    course = tiny_lab.course

    def order(**kw):
        return [r.email.split("@")[0] for r in course_gradebook(course, **kw).rows]

    assert order(sort="tiny") == ["cy", "bob", "ann", "dee", "eve"]
    assert order(sort="tiny", descending=True) == ["ann", "bob", "cy", "dee", "eve"]
    assert order(sort="name", descending=True) == ["eve", "dee", "cy", "bob", "ann"]
    assert order(sort="passed", descending=True)[0] == "ann"
    assert order(sort="email", descending=True) == ["eve", "dee", "cy", "bob", "ann"]


def test_the_page_filters_and_sorts_from_query_parameters(client, people, cohort, tiny_lab):
    client.force_login(people["ta"])
    page = client.get(GRADEBOOK + "?lab=tiny&status=not_passed&sort=tiny&dir=desc").content.decode()
    assert "bob@example.com" in page and "ann@example.com" not in page
    assert page.index("bob@example.com") < page.index("cy@example.com") < page.index("eve@example.com")
    # Status in words and symbols, not colour alone; the sorted column says so.
    assert 'aria-hidden="true">✗</span> 60%' in page and "failed</span>" in page and 'aria-sort="descending"' in page
    response = client.get(GRADEBOOK + "?sort=nope")
    assert response.status_code == 400 and BAD_SORT.format(value="nope") in unescape(response.content.decode())
    response = client.get(GRADEBOOK + "?lab=tiny&status=lost")
    assert response.status_code == 400 and BAD_STATUS.format(value="lost") in unescape(response.content.decode())


GRADEBOOK_VIEWS = {GRADEBOOK: "view", AT_RISK: "view", JSON: "export"}
MAY = {"view": {"instructor", "ta", "auditor", "superuser"}, "export": {"instructor", "ta", "superuser"}}


@pytest.mark.parametrize("url", list(GRADEBOOK_VIEWS))
def test_each_role_against_the_cockpit_pages(client, people, cohort, url):
    outcomes = {}
    for role in ROLES:
        client.logout()
        outcomes[role] = _outcome(_as(client, people, role).get(url))
    allowed = MAY[GRADEBOOK_VIEWS[url]]
    assert outcomes == {
        role: "allowed" if role in allowed else "log in" if role == "anonymous" else 404 for role in ROLES
    }


def test_an_auditor_sees_the_gradebook_but_is_offered_no_export(client, people, cohort):
    client.force_login(people["auditor"])
    page = client.get(GRADEBOOK).content.decode()
    assert "ann@example.com" in page and "grades.csv" not in page and "gradebook.json" not in page
    client.force_login(people["instructor"])
    page = client.get(GRADEBOOK + "?q=bob").content.decode()
    assert "grades.csv?q=bob" in page and "gradebook.json?q=bob" in page


def test_the_course_page_and_the_lab_submissions_link_the_cockpit(client, people, tiny_lab):
    client.force_login(people["auditor"])
    page = client.get("/courses/tiny-course/").content.decode()
    assert GRADEBOOK in page and AT_RISK in page
    page = client.get("/instructor/labs/tiny-course/tiny/submissions/").content.decode()
    assert GRADEBOOK + "?lab=tiny&amp;status=not_passed" in page
    client.force_login(people["learner"])
    assert GRADEBOOK not in client.get("/courses/tiny-course/").content.decode()


@pytest.fixture
def staff_client(client, tiny_lab):
    staff = UserFactory(email="teacher@example.com")
    CourseStaff.objects.create(user=staff, course=tiny_lab.course, role="ta")
    client.force_login(staff)
    return client


def test_the_json_export_has_every_learner_s_cells_by_lab_slug(staff_client, cohort):
    client = staff_client
    response = client.get(JSON + "?lab=tiny&status=not_passed&sort=email")
    assert response["Content-Type"] == "application/json"
    document = response.json()
    assert document["course"] == "tiny-course" and document["enrolled"] == 5
    assert document["labs"] == [{"slug": "tiny", "title": "Tiny lab"}, {"slug": "tiny-two", "title": "Tiny two"}]
    bob = document["learners"][0]
    assert set(bob) == {"email", "name", "labs_passed", "last_activity", "labs"}
    assert bob["email"] == "bob@example.com" and bob["name"] == "Bob Failer" and bob["labs_passed"] == 0
    assert bob["labs"] == {
        "tiny": {"status": "failed", "best_percent": 60.0, "attempts": 2},
        "tiny-two": {"status": "not_attempted", "best_percent": None, "attempts": 0},
    }
    assert [learner["email"] for learner in document["learners"]] == [
        f"{k}@example.com" for k in ("bob", "cy", "dee", "eve")
    ]
    bad = client.get(JSON + "?sort=x")
    assert bad.status_code == 400 and bad.json() == {"error": BAD_SORT.format(value="x")}


def test_the_grades_csv_keeps_its_columns_and_follows_the_gradebook_s_filters(staff_client, cohort):
    client = staff_client
    rows = list(csv.reader(io.StringIO(client.get(CSV).content.decode())))
    assert rows[0] == ["email", "display_name", "tiny (best %)", "tiny-two (best %)", "labs_passed"]
    assert rows[1] == ["ann@example.com", "Ann Passer", "80.0", "100.0", "2"]
    assert [row[0] for row in rows[1:]] == [f"{k}@example.com" for k in ("ann", "bob", "cy", "dee", "eve")]
    rows = list(csv.reader(io.StringIO(client.get(CSV + "?lab=tiny&status=failed").content.decode())))
    assert rows[1:] == [["bob@example.com", "Bob Failer", "60.0", "", "0"]]


# The at-risk list.


@pytest.fixture
def stalled(tiny_lab, second_lab):
    course = tiny_lab.course
    users = {key: UserFactory(email=f"{key}@example.com") for key in ("idle", "stuck", "fine", "recovered", "done")}
    for user in users.values():
        Enrollment.objects.create(user=user, course=course)
    Enrollment.objects.filter(user__in=users.values()).update(created_at=timezone.now() - timedelta(days=30))
    graded(users["idle"], tiny_lab, "failed", days_ago=10, failing=["main.py exits 0"])
    for day in (3, 2, 1):
        graded(users["stuck"], tiny_lab, "failed", days_ago=day, failing=["predictions are accurate"])
    graded(users["stuck"], tiny_lab, "failed", days_ago=0.5, failing=["main.py exits 0"])
    graded(users["fine"], tiny_lab, "failed", days_ago=1, failing=["main.py exits 0"])
    for day in (4, 3, 2):
        graded(users["recovered"], tiny_lab, "failed", days_ago=day, failing=["predictions are accurate"])
    graded(users["recovered"], tiny_lab, "passed", 100, days_ago=1)
    graded(users["done"], tiny_lab, "passed", 100, days_ago=20)
    graded(users["done"], second_lab, "passed", 100, days_ago=20)
    return users


def test_at_risk_are_the_idle_and_the_stuck_with_their_last_failing_check(stalled, tiny_lab):
    risky = {r.email.split("@")[0]: r for r in course_at_risk(tiny_lab.course)}
    assert set(risky) == {"idle", "stuck"}
    idle, stuck = risky["idle"], risky["stuck"]
    assert idle.idle_days == 10 and idle.repeated_check == ""
    assert idle.last_failed_check == "main.py exits 0" and idle.last_failed_lab == "tiny"
    assert stuck.idle_days is None
    assert (stuck.repeated_check, stuck.repeated_lab, stuck.repeated_failures) == (
        "predictions are accurate",
        "tiny",
        3,
    )
    # The newest failing check, and when it was submitted.
    assert stuck.last_failed_check == "main.py exits 0"
    assert timezone.now() - stuck.last_failed_at < timedelta(days=0.6)
    assert [r.email for r in course_at_risk(tiny_lab.course)][0] == "idle@example.com"


def test_the_at_risk_thresholds_are_query_parameters(client, people, stalled, tiny_lab):
    assert {r.email for r in course_at_risk(tiny_lab.course, days=11, failures=4)} == set()
    assert {r.email for r in course_at_risk(tiny_lab.course, days=1, failures=9)} == {
        "idle@example.com",
        "fine@example.com",
        "recovered@example.com",  # passed one lab of two, a day ago
    }
    client.force_login(people["auditor"])
    page = client.get(AT_RISK).content.decode()
    assert "idle@example.com" in page and "stuck@example.com" in page and "fine@example.com" not in page
    assert "no progress for 10 days" in page and "failed “predictions are accurate” (tiny) 3 times" in page
    page = client.get(AT_RISK + "?days=1&failures=9").content.decode()
    assert "fine@example.com" in page and "stuck@example.com" not in page
    response = client.get(AT_RISK + "?days=soon")
    assert response.status_code == 400
    assert BAD_NUMBER.format(name="days", low=1, high=3650, value="soon") in unescape(response.content.decode())


def test_a_course_without_learners_has_an_empty_gradebook_and_nobody_at_risk(tiny_lab, client):
    staff = UserFactory(email="staff@example.com")
    CourseStaff.objects.create(user=staff, course=tiny_lab.course, role="instructor")
    client.force_login(staff)
    assert "No learners match." in client.get(GRADEBOOK).content.decode()
    assert "Nobody is at risk" in client.get(AT_RISK).content.decode()
