"""Which labs of a course a learner passed, for courses' progress (registered in
GradingConfig.ready() into courses.progress.lab_progress)."""

from __future__ import annotations

from labs.models import Lab

from .models import Submission


def lab_progress(*, user, course) -> list[tuple[Lab, bool]]:
    labs = list(Lab.objects.published().filter(course=course).select_related("module"))
    passed = set(
        Submission.objects.filter(user=user, lab__in=labs, status=Submission.Status.PASSED).values_list(
            "lab_id", flat=True
        )
    )
    return [(lab, lab.pk in passed) for lab in labs]
