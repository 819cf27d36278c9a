"""The streams app: the Kafka platform (streams/kafka/) and one package per stream pipeline.

ready() keeps the correlation report's beat entry in step with its setting.
"""

from django.apps import AppConfig


class StreamsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "streams"
    verbose_name = "Streams"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        post_migrate.connect(_ensure_report_schedule, sender=self, dispatch_uid="streams_report_schedule")


def _ensure_report_schedule(*, using: str = "default", **kwargs) -> None:
    """Keep the beat entry of the correlation report in step with its setting after `migrate`."""
    if using != "default":
        return
    from .report.services import report_schedule_ensure

    report_schedule_ensure()
