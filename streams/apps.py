from django.apps import AppConfig


class StreamsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "streams"
    verbose_name = "Streams"

    def ready(self) -> None:
        # Admin screens of the orders and sensor/activity pipelines (beside streams/admin.py).
        from . import admin_streams  # noqa: F401
