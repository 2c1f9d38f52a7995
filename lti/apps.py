from django.apps import AppConfig


class LtiConfig(AppConfig):
    name = "lti"
    verbose_name = "LTI 1.3 tool"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from grading import hooks

        from . import services

        hooks.submission_graded.append(services.grade_sync_schedule)
        hooks.maintenance.append(services.used_nonces_prune)
