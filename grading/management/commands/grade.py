"""`manage.py grade COURSE/LAB SOURCE [--json] [--user EMAIL [--create-user] [--name NAME]]`.

docs/contracts.md section 1: grades synchronously through the same service the Celery
task calls. Exit 0 when grading completed (whatever the verdict), 1 when the
platform could not grade, 2 for usage errors and rejected sources.
"""

from __future__ import annotations

import json
import sys
from typing import NoReturn

from django.core.management.base import BaseCommand, CommandParser

from accounts.models import User
from labs.models import Lab

SYSTEM_EMAIL = "grader@shipwright.invalid"
CREATED_WITHOUT_NAME = (
    "grade: created learner {email}; certificates will print the name {name!r} until they set their own "
    "on their profile (give --name to choose it)\n"
)


class Command(BaseCommand):
    help = "Grade SOURCE (a directory, .zip, .tar.gz/.tgz, .ipynb or https:// git URL) for COURSE/LAB."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("lab", metavar="COURSE/LAB")
        parser.add_argument("source", metavar="SOURCE")
        parser.add_argument("--json", dest="as_json", action="store_true", help="print the result as one JSON document")
        parser.add_argument("--user", metavar="EMAIL", help="grade on behalf of this learner")
        parser.add_argument("--create-user", action="store_true", help="create the --user account if missing")
        parser.add_argument(
            "--name",
            help="the name printed on the --user learner's certificates, if they have none yet "
            "(a certificate of a learner without a name waits for one)",
        )

    def _fail(self, message: str, code: int = 2) -> NoReturn:
        sys.stderr.write(f"grade: {message}\n")
        sys.stderr.flush()
        raise SystemExit(code)

    def handle(
        self,
        *args,
        lab: str,
        source: str,
        as_json: bool,
        user: str | None,
        create_user: bool,
        name: str | None = None,
        **options,
    ) -> None:
        from grading import services

        course_slug, _, lab_slug = lab.partition("/")
        if not course_slug or not lab_slug:
            self._fail(f"{lab!r} is not COURSE/LAB (e.g. mlops-foundations/train-model)")
        lab_obj = Lab.objects.select_related("course").filter(course__slug=course_slug, slug=lab_slug).first()
        if lab_obj is None:
            self._fail(f"no lab {lab!r}; import the content first (manage.py import_content content/)")
        if not lab_obj.gradeable:
            self._fail(f"lab {lab!r} has no stages and checks to grade yet")
        if create_user and not user:
            self._fail("--create-user needs --user EMAIL")
        if name is not None and (not user or not name.strip()):
            self._fail("--name needs --user EMAIL and a non-empty name")
        if user:
            learner = User.objects.filter(email__iexact=user).first()
            if learner is None:
                if not create_user:
                    self._fail(f"no user with e-mail {user!r} (add --create-user to create one)")
                # Section 1 of docs/contracts.md: a learner created here earns the
                # certificate like any other, so it needs a name to print. Without
                # --name the operator is told which one it got (never silently).
                given = (name or "").strip() or user.split("@", 1)[0]
                learner = User.objects.create_user(email=user, display_name=given)
                if not (name or "").strip():
                    sys.stderr.write(CREATED_WITHOUT_NAME.format(email=user, name=given))
            elif name and not learner.display_name.strip():
                learner.display_name = name.strip()
                learner.save(update_fields=["display_name"])
        else:
            learner, _ = User.objects.get_or_create(
                email=SYSTEM_EMAIL, defaults={"display_name": "Shipwright grader", "is_active": False}
            )

        try:
            # Same intake, messages and rejections as the web form and the API; the
            # operator is not throttled, and grading runs here rather than on the queue.
            submission = services.submission_create_from_source(
                user=learner, lab=lab_obj, path=source, enforce_limits=False, enqueue=False
            )
        except services.SubmissionRejected as exc:
            self._fail(exc.message)
        submission = services.submission_grade_in_process(submission.pk, worker="manage.py grade")
        document = services.submission_result_document(submission)
        if as_json:
            self.stdout.write(json.dumps(document, indent=2))
        else:
            self._print_human(document, submission)
        if document["status"] == "error":
            # The operator at this prompt gets the engine's own words as well.
            detail = f" ({submission.error_detail})" if submission.error_detail else ""
            sys.stderr.write(f"grade: the platform could not grade: {submission.error_message}{detail}\n")
            raise SystemExit(1)

    def _print_human(self, document: dict, submission) -> None:
        out = self.stdout
        out.write(f"{document['lab']}: {document['status'].upper()}  {document['score']:g} / {document['max_score']:g}")
        for test in document["tests"]:
            flag = {"passed": "✓", "failed": "✗", "skipped": "-", "error": "!"}.get(test["status"], "?")
            required = " (required)" if test["required"] else ""
            out.write(f"  {flag} {test['name']}{required}: {test['score']:g}/{test['max_score']:g}")
            if test["status"] != "passed" and test["output"]:
                for line in test["output"].splitlines()[:12]:
                    out.write(f"      {line}")
        for stage in document["stages"]:
            out.write(f"  stage {stage['name']}: exit {stage['exit_code']} in {stage['duration_s']:.1f} s")
        if document["certificate"]:
            out.write(f"  certificate: {document['certificate']['url']}")
        out.write(f"submission {submission.pk}")
