from django.apps import AppConfig


class QuarantineConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "quarantine"
    verbose_name = "Quarantine"

    def ready(self) -> None:
        # Connects the Celery task_failure handler in every process (worker included).
        from . import signals  # noqa: F401
