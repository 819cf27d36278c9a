from django.apps import AppConfig


class StreamsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "streams"
    verbose_name = "Streams"

    def ready(self) -> None:
        # Admin screens of the orders and sensor/activity pipelines (beside streams/admin.py).
        from . import admin_streams  # noqa: F401
        from django.db.models.signals import post_migrate

        post_migrate.connect(_ensure_report_schedule, sender=self, dispatch_uid="streams_report_schedule")


def _ensure_report_schedule(*, using: str = "default", **kwargs) -> None:
    """Keep the beat entry of the correlation report in step with its setting after `migrate`."""
    if using != "default":
        return
    from .report import report_schedule_ensure

    report_schedule_ensure()
