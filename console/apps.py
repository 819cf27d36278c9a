from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ConsoleConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "console"
    verbose_name = "Console"

    def ready(self) -> None:
        from .tracing import configure

        configure()  # exports spans when OTEL_EXPORTER_OTLP_ENDPOINT is set
        post_migrate.connect(_ensure_roles, sender=self, dispatch_uid="console_roles")
        post_migrate.connect(_ensure_lag_schedule, sender=self, dispatch_uid="console_lag_schedule")


def _ensure_roles(**kwargs) -> None:
    from .roles import roles_ensure

    roles_ensure()


def _ensure_lag_schedule(*, using: str = "default", **kwargs) -> None:
    """Keep the beat entry of `console.sample_lag` in step with CONSOLE_LAG_SAMPLE_SECONDS after `migrate`."""
    if using != "default":
        return
    from .ops.lag_history import lag_schedule_ensure

    lag_schedule_ensure()
