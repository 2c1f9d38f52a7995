from django.core.management.base import BaseCommand, CommandError

from grading.labcheck import default_jobs, lab_check
from labs.models import Lab


class Command(BaseCommand):
    help = "Grade a lab's reference solution and wrong variants through the real engine; check their verdicts."

    def add_arguments(self, parser) -> None:
        parser.add_argument("labs", nargs="+", metavar="COURSE/LAB", help="or COURSE/* for every gradeable lab")
        parser.add_argument(
            "--repeat",
            type=int,
            default=1,
            metavar="N",
            help="grade the reference and each variant N times and report checks whose verdict changes (a flaky grader)",
        )
        parser.add_argument(
            "--jobs",
            type=int,
            default=None,
            metavar="N",
            help=f"grade up to N cases of a lab at once (default: one per core, here {default_jobs()})",
        )

    def handle(self, *args, labs: list[str], repeat: int = 1, jobs: int | None = None, **options) -> None:
        if repeat < 1:
            raise CommandError(f"--repeat must be at least 1, not {repeat}")
        if jobs is not None and jobs < 1:
            raise CommandError(f"--jobs must be at least 1, not {jobs}")
        selected = []
        for name in labs:
            course, _, slug = name.partition("/")
            queryset = Lab.objects.filter(course__slug=course, published=True)
            found = [lab for lab in queryset if lab.gradeable] if slug == "*" else list(queryset.filter(slug=slug))
            if not found:
                raise CommandError(f"no lab {name!r} (import the content first)")
            selected += found
        failures = 0
        unstable = 0
        for lab in selected:
            if not lab.gradeable:
                raise CommandError(f"lab {lab.full_slug} has no stages and checks yet")
            self.stdout.write(f"{lab.full_slug}:")
            for case in lab_check(lab, repeat=repeat, jobs=jobs):
                mark = "ok  " if case.ok else "FAIL"
                self.stdout.write(
                    f"  {mark} {case.path}: {case.status} {case.score:g}/{case.max_score:g} (expected {case.expected})"
                    + (f"; failing: {', '.join(case.failing)}" if case.failing else "")
                )
                for problem in case.problems:
                    self.stdout.write(f"         {problem}")
                failures += not case.ok
                if repeat > 1:
                    verdicts = ", ".join(f"{v} {case.verdicts.count(v)}/{repeat}" for v in dict.fromkeys(case.verdicts))
                    self.stdout.write(f"         {repeat} runs: {verdicts}")
                for name, counts in case.unstable:
                    spread = ", ".join(f"{status} {count}/{repeat}" for status, count in counts)
                    self.stdout.write(f"  UNSTABLE {case.path}: check {name!r}: {spread}")
                unstable += len(case.unstable)
        if unstable:
            raise CommandError(
                f"{unstable} check verdict(s) changed between runs of the same solution (a flaky grader)"
                + (f"; and {failures} case(s) did not get the verdict their lab declares" if failures else "")
            )
        if failures:
            raise CommandError(f"{failures} case(s) did not get the verdict their lab declares")
        self.stdout.write(self.style.SUCCESS("Every reference and variant got its declared verdict."))
        if repeat > 1:
            self.stdout.write(self.style.SUCCESS(f"Every check gave the same verdict in all {repeat} runs."))
