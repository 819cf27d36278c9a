from django.apps import AppConfig
from django.db.models.signals import post_migrate


class QuarantineConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "quarantine"
    verbose_name = "Quarantine"

    def ready(self) -> None:
        # Connects the Celery task_failure handler in every process (worker included).
        from . import signals  # noqa: F401

        post_migrate.connect(_ensure_operators_group, sender=self, dispatch_uid="quarantine_operators_group")


def _ensure_operators_group(**kwargs) -> None:
    # Migration 0003 creates the group; this recreates it when it is missing
    # (deleted by hand, or a flushed test database) without touching an
    # existing group's permissions.
    from .services import quarantine_operators_group_ensure

    quarantine_operators_group_ensure()
