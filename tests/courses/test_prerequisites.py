"""Course prerequisites: declared in course.yaml, checked at import, shown on the
catalog and the course page with the learner's status."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from django.urls import reverse

from courses.importer import PREREQUISITE_CYCLE, PREREQUISITE_UNKNOWN, ContentError, content_import
from courses.models import Course
from tests.grading.tiny_lab import make_tiny_course

NEXT_COURSE = """slug: {slug}
title: {title}
summary: Builds on the tiny course.
estimated_hours: 1
published: true
modules: [basics]
prerequisites: {prerequisites}
certificate:
  title: {title} certificate
  requirements:
    - lab: tiny
"""


def add_course(root: Path, slug: str, prerequisites: list[str], title: str = "") -> Path:
    """A copy of the tiny course under another slug, with these prerequisites."""
    folder = root / slug
    shutil.copytree(root / "tiny-course", folder)
    text = NEXT_COURSE.format(
        slug=slug, title=title or slug.title(), prerequisites="[" + ", ".join(prerequisites) + "]"
    )
    (folder / "course.yaml").write_text(text)
    return folder


def set_prerequisites(root: Path, slug: str, prerequisites: list[str]) -> None:
    path = root / slug / "course.yaml"
    text = path.read_text()
    text = re.sub(r"^prerequisites: .*\n", "", text, flags=re.M)
    path.write_text(text + "prerequisites: [" + ", ".join(prerequisites) + "]\n")


@pytest.fixture
def two_courses(tmp_path) -> Path:
    root = make_tiny_course(tmp_path / "content")
    add_course(root, "tiny-next", ["tiny-course"], title="Tiny next")
    return root


def problems(root: Path) -> list[str]:
    with pytest.raises(ContentError) as caught:
        content_import(root)
    return [str(problem) for problem in caught.value.problems]


def test_a_prerequisite_is_stored_in_course_yaml_order(db, two_courses):
    content_import(two_courses)
    course = Course.objects.get(slug="tiny-next")
    assert course.prerequisites == ["tiny-course"]
    assert [c.slug for c in course.prerequisite_courses()] == ["tiny-course"]
    assert Course.objects.get(slug="tiny-course").prerequisites == []


def test_an_unknown_prerequisite_is_named_and_nothing_is_written(db, two_courses):
    set_prerequisites(two_courses, "tiny-next", ["tiny-course", "no-such-course"])
    found = problems(two_courses)
    expected = PREREQUISITE_UNKNOWN.format(slug="no-such-course", root="content")
    assert any("tiny-next/course.yaml" in p and "prerequisites.1" in p and expected in p for p in found), found
    assert not Course.objects.exists()


def test_a_cycle_of_prerequisites_is_refused_with_its_path(db, two_courses):
    add_course(two_courses, "tiny-third", ["tiny-next"])
    set_prerequisites(two_courses, "tiny-course", ["tiny-third"])
    found = problems(two_courses)
    cycles = [p for p in found if "prerequisites form a cycle" in p]
    assert len(cycles) == 1, found
    assert PREREQUISITE_CYCLE.format(cycle="") in cycles[0]
    assert all(slug in cycles[0] for slug in ("tiny-course", "tiny-next", "tiny-third"))
    assert not Course.objects.exists()


def test_a_course_cannot_be_its_own_prerequisite(db, two_courses):
    set_prerequisites(two_courses, "tiny-next", ["tiny-next"])
    found = problems(two_courses)
    assert any("a course cannot be its own prerequisite" in p for p in found), found


def test_the_catalog_and_course_page_show_prerequisites_with_the_learner_s_status(db, two_courses, client, learner):
    from tests.certificates.test_issuing_and_verify_page import pass_lab

    content_import(two_courses)
    first = Course.objects.get(slug="tiny-course")
    # Anonymous: named and linked, no status.
    page = client.get(reverse("courses:course-detail", args=["tiny-next"])).content.decode()
    assert 'id="prerequisites-tiny-next"' in page
    assert f'href="{first.get_absolute_url()}">Tiny course</a>' in page
    assert "data-prerequisite" not in page

    client.force_login(learner)
    for url in (reverse("courses:catalog"), reverse("courses:course-detail", args=["tiny-next"])):
        page = client.get(url).content.decode()
        assert 'data-prerequisite="tiny-course">not yet</span>' in page
        assert "You may enroll and start now" in page
    # The first course lists none.
    page = client.get(reverse("courses:course-detail", args=["tiny-course"])).content.decode()
    assert "prerequisites-tiny-course" not in page
    # Enrolling is allowed before the prerequisite is done.
    response = client.post(reverse("courses:course-enroll", args=["tiny-next"]))
    assert response.status_code == 302
    assert learner.enrollments.filter(course__slug="tiny-next").exists()

    from certificates import services

    pass_lab(learner, first)
    assert services.certificate_award_if_complete(user=learner, course=first) is not None
    page = client.get(reverse("courses:course-detail", args=["tiny-next"])).content.decode()
    assert 'data-prerequisite="tiny-course">done</span>' in page
    assert "You may enroll and start now" not in page
