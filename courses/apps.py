from django.apps import AppConfig


class CoursesConfig(AppConfig):
    name = "courses"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from accounts import hooks

        from . import account_data, services

        hooks.account_exporters.append(account_data.export)
        hooks.demo_instructor_setup.append(services.demo_instructor_grant)
