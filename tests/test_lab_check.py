"""Every gradeable lab of the sample course is its own test suite: the reference
solution passes and each wrong variant fails on the checks it declares, graded by
the real engine."""

from __future__ import annotations

import pytest

from grading.labcheck import lab_check
from labs.models import Lab

GRADEABLE = [
    "validate-data",
    "train-model",
    "serve-model",
    "ci-workflow",
    "drift-monitor",
    "audit-trail",
    "capstone",
]


@pytest.mark.parametrize("slug", GRADEABLE)
def test_the_lab_reference_and_variants_get_their_declared_verdicts(sample_course, slug):
    lab = Lab.objects.get(course=sample_course, slug=slug)
    results = lab_check(lab)
    assert results, "the lab declares no reference or variants"
    assert results[0].status == "passed"
    problems = [f"{r.path}: {p}" for r in results for p in r.problems]
    assert not problems, problems


def test_every_gradeable_lab_is_covered(sample_course):
    gradeable = {lab.slug for lab in Lab.objects.filter(course=sample_course) if lab.gradeable}
    assert gradeable == set(GRADEABLE)


# The second course, mlops-in-production (the sample course's fixture imports all of content/).
PRODUCTION = ["deploy-kubernetes", "track-experiments", "instrument-service", "capstone-production"]


@pytest.mark.parametrize("slug", PRODUCTION)
def test_a_production_course_lab_gets_its_declared_verdicts(sample_course, slug):
    lab = Lab.objects.get(course__slug="mlops-in-production", slug=slug)
    results = lab_check(lab)
    assert results and results[0].status == "passed"
    problems = [f"{r.path}: {p}" for r in results for p in r.problems]
    assert not problems, problems


def test_every_gradeable_lab_of_the_production_course_is_covered(sample_course):
    gradeable = {lab.slug for lab in Lab.objects.filter(course__slug="mlops-in-production") if lab.gradeable}
    assert gradeable == set(PRODUCTION)
