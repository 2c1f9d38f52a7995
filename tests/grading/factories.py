"""Factories for graded attempts (submissions with their check results), for tests
that need a cohort's history without running the grader."""

from __future__ import annotations

import factory

from grading.models import CheckResult, Submission
from tests.factories import UserFactory


class SubmissionFactory(factory.django.DjangoModelFactory):
    """A finished submission. `at=` sets when it was submitted (created_at is
    auto_now_add); `checks={name: status}` adds check results in the lab's order."""

    class Meta:
        model = Submission
        skip_postgeneration_save = True

    user = factory.SubFactory(UserFactory)
    source_kind = Submission.SourceKind.ARCHIVE
    snapshot_path = factory.LazyAttribute(lambda o: f"{o.snapshot_sha256}.tar.gz")
    snapshot_sha256 = factory.Sequence(lambda n: f"{n:064x}")
    status = Submission.Status.FAILED
    score = 0.0
    max_score = 100.0
    lab_hash = factory.LazyAttribute(lambda o: o.lab.content_hash)

    @factory.post_generation
    def at(obj, create, extracted, **kwargs):  # noqa: N805
        if create and extracted is not None:
            Submission.objects.filter(pk=obj.pk).update(created_at=extracted)
            obj.created_at = extracted

    @factory.post_generation
    def checks(obj, create, extracted, **kwargs):  # noqa: N805
        if not (create and extracted):
            return
        order = {check["name"]: i for i, check in enumerate(obj.lab.spec.get("checks", []))}
        for name, status in extracted.items():
            CheckResult.objects.create(
                submission=obj,
                order=order.get(name, len(order)),
                name=name,
                status=status,
                score=20.0 if status == CheckResult.Status.PASSED else 0.0,
                max_score=20.0,
            )
