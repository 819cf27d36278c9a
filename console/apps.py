from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ConsoleConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "console"
    verbose_name = "Console"

    def ready(self) -> None:
        post_migrate.connect(_ensure_roles, sender=self, dispatch_uid="console_roles")


def _ensure_roles(**kwargs) -> None:
    from .roles import roles_ensure

    roles_ensure()
