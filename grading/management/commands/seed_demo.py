from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from courses.models import Course
from grading.demo import DEFAULT_LEARNERS, DEMO_DOMAIN, demo_cohort_seed

NOT_DEBUG = "seed_demo is for development (DJANGO_DEBUG=1); --force seeds demo learners anyway."
NO_COURSE = "No course {slug!r}: import the content first (python manage.py import_content content/)."


class Command(BaseCommand):
    help = (
        "Seed a cohort of demo learners with attempt histories for a course (default: the sample course), "
        "so the instructor's gradebook and at-risk list are not empty. Idempotent."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--course", default="mlops-foundations", help="the course's slug")
        parser.add_argument("--learners", type=int, default=DEFAULT_LEARNERS, help="how many demo learners")
        parser.add_argument("--force", action="store_true", help="seed even with DEBUG off")

    def handle(self, *args, course: str, learners: int, force: bool, **options) -> None:
        if not settings.DEBUG and not force:
            raise CommandError(NOT_DEBUG)
        if not 1 <= learners <= 99:
            raise CommandError(f"--learners must be from 1 to 99, not {learners}.")
        target = Course.objects.filter(slug=course).first()
        if target is None:
            raise CommandError(NO_COURSE.format(slug=course))
        created = demo_cohort_seed(course=target, learners=learners)
        if created:
            self.stdout.write(f"Seeded {created} demo learner(s) in {course} (e-mails @{DEMO_DOMAIN}, no password).")
        else:
            self.stdout.write(f"The demo learners of {course} already exist: nothing to do.")
