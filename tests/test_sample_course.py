"""The sample course as learners meet it: every lab page renders, starters download,
and nothing hidden is ever served."""

from __future__ import annotations

import io
import zipfile

from labs.models import Lab


def test_every_lab_page_renders_and_its_starter_holds_nothing_hidden(sample_course, learner_client):
    learner_client.post(f"/courses/{sample_course.slug}/enroll/")
    labs = list(Lab.objects.filter(course=sample_course))
    assert len(labs) == 7
    for lab in labs:
        page = learner_client.get(lab.get_absolute_url())
        assert page.status_code == 200, lab.slug
        assert "How it is graded" in page.content.decode()
        download = learner_client.get(f"/labs/{sample_course.slug}/{lab.slug}/starter.zip")
        assert download["Content-Type"] == "application/zip"
        names = zipfile.ZipFile(io.BytesIO(download.content)).namelist()
        assert names and all(name.startswith(f"{lab.slug}-starter/") for name in names)
        assert not any("hidden" in name or "holdout" in name or "reference" in name for name in names), names


def test_every_lesson_renders_with_one_heading(sample_course, learner_client):
    learner_client.post(f"/courses/{sample_course.slug}/enroll/")
    for module in sample_course.modules.all():
        for lesson in module.lessons.all():
            html = learner_client.get(lesson.get_absolute_url()).content.decode()
            assert html.count("<h1") == 1, lesson.slug


def test_a_starter_download_needs_enrollment(sample_course, learner_client):
    response = learner_client.get(f"/labs/{sample_course.slug}/train-model/starter.zip")
    assert response.status_code == 302
