from django.apps import AppConfig


class CertificatesConfig(AppConfig):
    name = "certificates"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core import checks

        from . import system_checks

        checks.register(system_checks.check_signing_key, system_checks.TAG)

        from . import hooks

        hooks.register()
