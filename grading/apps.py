from django.apps import AppConfig


class GradingConfig(AppConfig):
    name = "grading"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core import checks

        from . import system_checks

        checks.register(system_checks.check_engine_and_images, system_checks.TAG)
        checks.register(system_checks.check_seccomp_base, system_checks.TAG)

        from accounts import hooks

        from . import account_data

        hooks.account_exporters.append(account_data.export)
        hooks.account_erasers.append(account_data.erase)

        from courses import progress as course_progress

        from . import progress

        course_progress.lab_progress.append(progress.lab_progress)

        # Workers record themselves for the queue estimate (grading/worker_registry.py).
        from celery.signals import worker_ready, worker_shutdown

        from . import worker_registry

        worker_ready.connect(worker_registry.on_worker_ready, weak=False)
        worker_shutdown.connect(worker_registry.on_worker_shutdown, weak=False)
