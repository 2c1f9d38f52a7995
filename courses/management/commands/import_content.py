from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from courses.importer import ContentError, content_import


class Command(BaseCommand):
    help = "Validate and import the courses under a content folder (all or nothing)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("root", nargs="?", default="content", help="content folder (default: content)")

    def handle(self, *args, root: str, verbosity: int, **options) -> None:
        try:
            report = content_import(Path(root))
        except ContentError as exc:
            for problem in exc.problems:
                self.stderr.write(f"  {problem}")
            raise CommandError(f"{len(exc.problems)} problem(s) found in {root}; nothing was imported.") from exc
        for label in report.created:
            self.stdout.write(f"created     {label}")
        for label in report.updated:
            self.stdout.write(f"updated     {label}")
        for label in report.unpublished:
            self.stdout.write(f"unpublished {label}")
        if verbosity > 1:
            for label in report.unchanged:
                self.stdout.write(f"unchanged   {label}")
        summary = (
            f"{len(report.created)} created, {len(report.updated)} updated, "
            f"{len(report.unpublished)} unpublished, {len(report.unchanged)} unchanged"
        )
        self.stdout.write(self.style.SUCCESS(f"Imported {root}: {summary}."))
