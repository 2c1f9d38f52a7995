"""The second course, mlops-in-production, as imported from content/: lessons and
knowledge checks, its prerequisite, its certificate and its lab's image."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

from courses.importer import content_import
from courses.models import Course, Question
from grading.system_checks import lab_images
from tests.conftest import CONTENT

TRACK_EXPERIMENTS = CONTENT / "mlops-in-production/labs/track-experiments"


@pytest.fixture
def both_courses(db):
    content_import(CONTENT)
    return Course.objects.get(slug="mlops-foundations"), Course.objects.get(slug="mlops-in-production")


def test_the_second_course_imports_with_a_quiz_per_module(both_courses):
    _, course = both_courses
    modules = list(course.modules.order_by("order"))
    assert [m.slug for m in modules] == ["registry", "observability", "kubernetes", "pipelines"]
    for module in modules:
        assert module.has_quiz, module.slug
        assert Question.objects.filter(module=module, published=True).count() >= 4, module.slug
        assert module.lessons.count() >= 1
    lessons = {lesson.slug for m in modules for lesson in m.lessons.all()}
    assert {"experiment-tracking", "model-registry", "golden-signals", "alerting-without-noise",
            "kubernetes-for-ml", "kubernetes-vs-serverless", "train-then-deploy"} <= lessons


def test_the_second_course_requires_the_first_and_has_its_own_certificate(both_courses):
    first, course = both_courses
    assert course.prerequisites == ["mlops-foundations"]
    assert course.prerequisite_courses() == [first]
    assert course.certificate_title == "MLOps in Production"
    assert course.certificate_title != first.certificate_title


def test_its_lab_runs_in_the_production_image_which_the_system_check_covers(both_courses):
    _, course = both_courses
    lab = course.labs.get(slug="deploy-kubernetes")
    assert lab.spec["image"] == "shipwright-lab-prod:py311"
    assert "shipwright-lab-prod:py311" in lab_images(databases=["default"])


def test_the_observability_module_presents_its_prometheus_lab_in_the_production_image(both_courses):
    _, course = both_courses
    lab = course.labs.get(slug="instrument-service")
    assert lab.module.slug == "observability"
    assert lab.spec["image"] == "shipwright-lab-prod:py311"
    # The grader serves a model of another version than the starter's (model_info is read from it).
    assert lab.spec["files"] == [{"from": "hidden/data/model.json", "to": "model/model.json"}]


def test_every_lesson_and_quiz_page_renders(both_courses, learner_client):
    _, course = both_courses
    learner_client.post(f"/courses/{course.slug}/enroll/")
    for module in course.modules.all():
        for lesson in module.lessons.all():
            html = learner_client.get(lesson.get_absolute_url()).content.decode()
            assert html.count("<h1") == 1, lesson.slug
        quiz = learner_client.get(f"/courses/{course.slug}/{module.slug}/quiz/")
        assert quiz.status_code == 200, module.slug


def test_the_catalog_shows_both_courses_and_the_prerequisite(both_courses, client):
    page = client.get("/").content.decode()
    assert "MLOps Foundations" in page and "MLOps in Production" in page
    assert 'id="prerequisites-mlops-in-production"' in page


def test_the_foundations_lesson_points_to_the_new_course_for_mlflow():
    text = (CONTENT / "mlops-foundations/modules/02-training/03-persistence-and-tracking.md").read_text()
    assert "/courses/mlops-in-production/" in text
    assert "try: import mlflow" not in text


def test_the_track_experiments_data_is_up_to_date_and_no_hidden_row_is_public():
    script = CONTENT / "mlops-in-production/tools/track_experiments_data.py"
    run = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    hidden = pd.read_csv(TRACK_EXPERIMENTS / "hidden/data/holdout_features.csv")
    labels = json.loads((TRACK_EXPERIMENTS / "hidden/data/holdout_labels.json").read_text())
    assert len(hidden) == len(labels) == 114
    # A logged "model" that looks rows up in scikit-learn's copy of the data finds none.
    public = {tuple(row) for row in load_breast_cancer().data.round(6)}
    assert not public & {tuple(row) for row in hidden.to_numpy().round(6)}
