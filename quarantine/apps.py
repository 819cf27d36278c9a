"""The quarantine app's start-up: the Celery task_failure handler, the
dead-letter sink the Kafka platform calls (streams.kafka.registry), and the
defaults recreated after every migrate.

Called by: Django, when the app registry is ready.
"""

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class QuarantineConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "quarantine"
    verbose_name = "Quarantine"

    def ready(self) -> None:
        # Connects the Celery task_failure handler in every process (worker included).
        from . import signals  # noqa: F401

        # Consumers' dead letters become quarantine records (the Kafka platform imports no app).
        from streams.kafka.registry import set_dead_letter_sink

        from .services import quarantine_dead_letters

        set_dead_letter_sink(quarantine_dead_letters)

        post_migrate.connect(_ensure_defaults, sender=self, dispatch_uid="quarantine_defaults")


def _ensure_defaults(**kwargs) -> None:
    # Migration 0003 creates the cleanup schedule (and once created the operators group);
    # this recreates whichever is missing (deleted by hand, or a flushed test
    # database) without touching existing ones.
    from .services import quarantine_defaults_ensure

    quarantine_defaults_ensure()
