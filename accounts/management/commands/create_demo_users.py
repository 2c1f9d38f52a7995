import secrets

from allauth.account.models import EmailAddress
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.models import User

DEMO_USERS = [
    ("instructor@shipwright.local", "Demo Instructor", True),
    ("learner@shipwright.local", "Demo Learner", False),
]


class Command(BaseCommand):
    help = "Create a demo instructor and learner with random passwords (development only)."

    def handle(self, *args, **options) -> None:
        if not settings.DEBUG:
            raise CommandError("create_demo_users is for development only (DJANGO_DEBUG=1).")
        for email, name, staff in DEMO_USERS:
            if User.objects.filter(email=email).exists():
                self.stdout.write(f"{email} already exists (its password was printed when it was created).")
                continue
            password = secrets.token_urlsafe(12)
            user = User.objects.create_user(
                email=email, password=password, display_name=name, is_staff=staff, is_superuser=staff
            )
            EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
            role = "instructor (staff)" if staff else "learner"
            self.stdout.write(self.style.WARNING(f"Demo {role}: {email}  password: {password}"))
