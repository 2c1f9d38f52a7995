"""Apply the retention policy now, or report what it would delete (--dry-run)."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from grading import retention

RETENTION_OFF = (
    "Retention is off (SHIPWRIGHT_RETENTION_DAYS is 0): no snapshot or stage output is deleted. "
    "Pass --days N to prune attempts superseded more than N days ago."
)


class Command(BaseCommand):
    help = (
        "Delete the source snapshots and stage output of superseded attempts finished more than "
        "SHIPWRIGHT_RETENTION_DAYS ago (each learner's best attempt per lab and certificate evidence are kept)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="report counts and bytes, delete nothing")
        parser.add_argument("--days", type=int, default=None, help="override SHIPWRIGHT_RETENTION_DAYS")

    def handle(self, *args, dry_run: bool = False, days: int | None = None, **options):
        days = settings.SHIPWRIGHT_RETENTION_DAYS if days is None else days
        if days < 0:
            raise CommandError(f"--days must be 0 or more, got {days}")
        if days == 0:
            self.stdout.write(RETENTION_OFF)
            compacted = retention.compact_result_documents(dry_run=dry_run)
            self.stdout.write(
                f"result documents {'to compact' if dry_run else 'compacted'}: {compacted} "
                "(written before stage output was stored once)"
            )
            return
        report = retention.prune(older_than_days=days, dry_run=dry_run)
        if dry_run:
            self.stdout.write(f"Dry run: nothing was deleted. Attempts superseded more than {days} days ago:")
        for line in report.lines(dry_run=dry_run):
            self.stdout.write(line)
