from django.apps import AppConfig


class LabsConfig(AppConfig):
    name = "labs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from courses import importer

        from .importer import lab_load, labs_write

        importer.lab_content = importer.LabContent(load=lab_load, write=labs_write)
