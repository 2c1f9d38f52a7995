import pytest

from tests.grading.tiny_lab import make_tiny_course


@pytest.fixture
def tiny_lab(db, tmp_path):
    from courses.importer import content_import
    from labs.models import Lab

    content_import(make_tiny_course(tmp_path / "content"))
    return Lab.objects.get(slug="tiny")


def intake_all() -> list:
    """What the intake worker does: run intake for every received submission, in
    this process (the web form and the API only store the upload)."""
    from grading import services
    from grading.models import Submission

    received = Submission.objects.filter(status="received").order_by("created_at").values_list("pk", flat=True)
    return [services.submission_intake(pk) for pk in list(received)]


@pytest.fixture
def instructor_client(client, instructor, tiny_lab):
    """The instructor persona teaches the tiny course: a course role, since site staff
    alone opens only the admin (courses/access.py)."""
    from courses.models import CourseStaff

    CourseStaff.objects.create(user=instructor, course=tiny_lab.course, role=CourseStaff.Role.INSTRUCTOR)
    client.force_login(instructor)
    return client
