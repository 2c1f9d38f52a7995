import secrets

from allauth.account.models import EmailAddress
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts import hooks
from accounts.models import User

ADMIN, INSTRUCTOR, LEARNER = "admin", "instructor", "learner"
DEMO_USERS = [
    # Site staff: the admin only (a superuser, so it may also open every course).
    ("admin@shipwright.local", "Demo Admin", ADMIN),
    # Teaches through a course role (accounts/hooks.py `demo_instructor_setup`), not site staff.
    ("instructor@shipwright.local", "Demo Instructor", INSTRUCTOR),
    ("learner@shipwright.local", "Demo Learner", LEARNER),
]


class Command(BaseCommand):
    help = "Create a demo admin, instructor and learner with random passwords (development only)."

    def handle(self, *args, **options) -> None:
        if not settings.DEBUG:
            raise CommandError("create_demo_users is for development only (DJANGO_DEBUG=1).")
        for email, name, kind in DEMO_USERS:
            user = User.objects.filter(email=email).first()
            if user is not None:
                self.stdout.write(f"{email} already exists (its password was printed when it was created).")
            else:
                password = secrets.token_urlsafe(12)
                admin = kind == ADMIN
                user = User.objects.create_user(
                    email=email, password=password, display_name=name, is_staff=admin, is_superuser=admin
                )
                EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
                self.stdout.write(self.style.WARNING(f"Demo {kind}: {email}  password: {password}"))
            if kind == INSTRUCTOR:
                for setup in hooks.demo_instructor_setup:
                    if line := setup(user):
                        self.stdout.write(line)
