"""A course's staff page, the admin's course staff, the demo instructor's role, and the
upgrade path of site staff (issue 9)."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps as django_apps
from django.core.management import call_command

from courses import services
from courses.models import CourseStaff
from tests.factories import CourseFactory, UserFactory

STAFF_PAGE = "/instructor/courses/{slug}/staff/"


@pytest.fixture
def course(db):
    return CourseFactory(slug="demo", title="Demo course")


@pytest.fixture
def teaching(client, course):
    """A client logged in as the course's instructor."""
    ivy = UserFactory(email="ivy@example.com")
    CourseStaff.objects.create(user=ivy, course=course, role="instructor")
    client.force_login(ivy)
    return client


def roles(course) -> dict[str, str]:
    return dict(CourseStaff.objects.filter(course=course).values_list("user__email", "role"))


def test_an_instructor_adds_staff_by_e_mail_with_a_role_and_changes_it(teaching, course):
    UserFactory(email="tom@example.com")
    response = teaching.post(STAFF_PAGE.format(slug="demo"), {"email": "TOM@example.com", "role": "ta"}, follow=True)
    assert "tom@example.com is now teaching assistant of this course." in response.content.decode()
    assert roles(course) == {"ivy@example.com": "instructor", "tom@example.com": "ta"}
    teaching.post(STAFF_PAGE.format(slug="demo"), {"email": "tom@example.com", "role": "auditor"})
    assert roles(course)["tom@example.com"] == "auditor"
    page = teaching.get(STAFF_PAGE.format(slug="demo")).content.decode()
    assert "tom@example.com" in page and "Auditor (read-only)" in page


def test_an_unknown_e_mail_is_refused_with_what_to_do(teaching, course):
    response = teaching.post(STAFF_PAGE.format(slug="demo"), {"email": "nobody@example.com", "role": "ta"})
    assert services.NO_SUCH_ACCOUNT.format(email="nobody@example.com") in response.content.decode()
    assert roles(course) == {"ivy@example.com": "instructor"}


def test_an_unknown_role_is_refused(teaching, course):
    UserFactory(email="tom@example.com")
    response = teaching.post(STAFF_PAGE.format(slug="demo"), {"email": "tom@example.com", "role": "dean"})
    assert response.status_code == 400
    assert roles(course) == {"ivy@example.com": "instructor"}


def test_an_instructor_removes_staff_but_never_the_last_instructor(teaching, course):
    tom = UserFactory(email="tom@example.com")
    tom_row = CourseStaff.objects.create(user=tom, course=course, role="ta")
    teaching.post(STAFF_PAGE.format(slug="demo"), {"remove": tom_row.pk})
    assert roles(course) == {"ivy@example.com": "instructor"}
    ivy_row = CourseStaff.objects.get(course=course)
    response = teaching.post(STAFF_PAGE.format(slug="demo"), {"remove": ivy_row.pk}, follow=True)
    assert services.LAST_INSTRUCTOR in response.content.decode()
    response = teaching.post(STAFF_PAGE.format(slug="demo"), {"email": "ivy@example.com", "role": "ta"})
    assert services.LAST_INSTRUCTOR in response.content.decode()
    assert roles(course) == {"ivy@example.com": "instructor"}


def test_staff_of_another_course_cannot_be_removed_from_this_page(teaching, course):
    other = CourseFactory(slug="other")
    row = CourseStaff.objects.create(user=UserFactory(), course=other, role="ta")
    teaching.post(STAFF_PAGE.format(slug="demo"), {"remove": row.pk})
    assert CourseStaff.objects.filter(pk=row.pk).exists()


def test_the_course_page_links_the_staff_page_for_its_instructors(teaching, client, course):
    page = teaching.get("/courses/demo/").content.decode()
    assert "Your role on this course: Instructor." in page and STAFF_PAGE.format(slug="demo") in page


def test_the_admin_manages_course_staff_on_the_course(client, course):
    root = UserFactory(email="root@example.com", is_staff=True, is_superuser=True)
    tom = UserFactory(email="tom@example.com")
    client.force_login(root)
    page = client.get(f"/admin/courses/course/{course.pk}/change/").content.decode()
    assert "course staff" in page.lower()
    response = client.post(
        "/admin/courses/coursestaff/add/", {"user": tom.pk, "course": course.pk, "role": "auditor"}, follow=True
    )
    assert response.status_code == 200
    assert roles(course) == {"tom@example.com": "auditor"}


def test_the_demo_instructor_teaches_the_sample_course(sample_course, settings):
    settings.DEBUG = True
    call_command("create_demo_users")
    call_command("create_demo_users")  # a second run changes nothing
    assert roles(sample_course) == {"instructor@shipwright.local": "instructor"}
    from accounts.models import User

    assert not User.objects.get(email="instructor@shipwright.local").is_staff
    assert User.objects.get(email="admin@shipwright.local").is_superuser


def test_upgrading_makes_site_staff_instructors_of_existing_courses(course):
    old_staff = UserFactory(email="old@example.com", is_staff=True)
    UserFactory(email="root@example.com", is_staff=True, is_superuser=True)
    UserFactory(email="learner@example.com")
    migration = importlib.import_module("courses.migrations.0004_site_staff_become_instructors")
    migration.site_staff_become_instructors(django_apps, None)
    migration.site_staff_become_instructors(django_apps, None)  # idempotent
    assert roles(course) == {old_staff.email: "instructor"}
