from django.core.management.base import BaseCommand, CommandError

from grading.labcheck import lab_check
from labs.models import Lab


class Command(BaseCommand):
    help = "Grade a lab's reference solution and wrong variants through the real engine; check their verdicts."

    def add_arguments(self, parser) -> None:
        parser.add_argument("labs", nargs="+", metavar="COURSE/LAB", help="or COURSE/* for every gradeable lab")

    def handle(self, *args, labs: list[str], **options) -> None:
        selected = []
        for name in labs:
            course, _, slug = name.partition("/")
            queryset = Lab.objects.filter(course__slug=course, published=True)
            found = [lab for lab in queryset if lab.gradeable] if slug == "*" else list(queryset.filter(slug=slug))
            if not found:
                raise CommandError(f"no lab {name!r} (import the content first)")
            selected += found
        failures = 0
        for lab in selected:
            if not lab.gradeable:
                raise CommandError(f"lab {lab.full_slug} has no stages and checks yet")
            self.stdout.write(f"{lab.full_slug}:")
            for case in lab_check(lab):
                mark = "ok  " if case.ok else "FAIL"
                self.stdout.write(
                    f"  {mark} {case.path}: {case.status} {case.score:g}/{case.max_score:g} (expected {case.expected})"
                    + (f"; failing: {', '.join(case.failing)}" if case.failing else "")
                )
                for problem in case.problems:
                    self.stdout.write(f"         {problem}")
                failures += not case.ok
        if failures:
            raise CommandError(f"{failures} case(s) did not get the verdict their lab declares")
        self.stdout.write(self.style.SUCCESS("Every reference and variant got its declared verdict."))
