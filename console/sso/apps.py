"""The Django app of single sign-on (label `sso`): its model and the login audit."""

from django.apps import AppConfig


class SsoConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "console.sso"
    label = "sso"
    verbose_name = "Single sign-on"

    def ready(self) -> None:
        from . import signals

        signals.connect()
