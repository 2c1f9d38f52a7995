"""The skeleton lab an instructor copies (content/mlops-foundations/labs/_template/) is a
working lab: copied into a course as the six steps say, it imports and its reference and
overlay variants get their declared verdicts from the real engine."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

from courses.importer import content_import
from courses.models import Course
from grading.labcheck import lab_check
from labs.models import Lab
from tests.conftest import CONTENT

TEMPLATE = CONTENT / "mlops-foundations/labs/_template"


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())


def test_the_sample_course_does_not_publish_the_template(sample_course):
    assert not Lab.objects.filter(slug__in=["_template", "my-lab"]).exists()


def test_a_copy_of_the_template_imports_and_passes_lab_check(db, tmp_path):
    course = tmp_path / "content/my-course"
    write(
        course / "course.yaml",
        """
        slug: my-course
        title: My course
        summary: A course made from the lab template.
        estimated_hours: 1
        published: true
        modules: [01-my-module]
        """,
    )
    write(
        course / "modules/01-my-module/module.yaml",
        """
        slug: my-module
        title: My module
        lessons:
          - {slug: intro, title: Intro, file: intro.md}
        lab: my-lab
        """,
    )
    write(course / "modules/01-my-module/intro.md", "Intro.\n")
    shutil.copytree(TEMPLATE, course / "labs/my-lab")

    content_import(tmp_path / "content")
    lab = Lab.objects.get(course=Course.objects.get(slug="my-course"), slug="my-lab")
    results = lab_check(lab)

    assert [(r.path, r.status) for r in results] == [
        ("hidden/reference", "passed"),
        ("hidden/variants/wrong-predictions", "failed"),
        ("hidden/variants/forgot-helper", "failed"),
    ]
    problems = [f"{r.path}: {p}" for r in results for p in r.problems]
    assert not problems, problems
