"""Extension points that apps above grading fill in their AppConfig.ready().

Grading sits below certificates (certificates > grading > labs > courses > accounts,
enforced by import-linter), so it never imports certificates: it calls whatever was
registered here. With nothing registered, grading works alone (no certificate is
awarded, the result document says "certificate": null, retention keeps only each
learner's best attempts).
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .models import Submission

# Called with a submission the moment it passed (inside the grading transaction).
submission_passed: list[Callable[[Submission], None]] = []
# True while `manage.py grade` grades in its own process (submission_grade_in_process):
# there the hooks may finish their work at once (certificates: issue and sign in the
# operator's process, so the command's JSON reports the certificate); in a grading
# worker they hand it on (certificates: to the signing worker's queue).
grading_in_process: ContextVar[bool] = ContextVar("grading_in_process", default=False)
# Called with a submission the moment it got a verdict, passed or failed (inside the
# grading transaction; enqueue follow-up work on commit), e.g. LTI grade passback.
submission_graded: list[Callable[[Submission], None]] = []
# Each returns the result document's "certificate" entry for a submission, or None.
result_certificate: list[Callable[[Submission], dict[str, Any] | None]] = []
# Each returns submission ids that retention must never prune (e.g. a certificate's evidence).
kept_submission_ids: list[Callable[[], set]] = []
# Called by the maintenance task on every tick (e.g. issue certificates pending a key).
maintenance: list[Callable[[], None]] = []
# Each returns the ids of users holding a certificate of a course (for the funnel).
course_certified_user_ids: list[Callable[[Any], set]] = []
