from django.apps import AppConfig


class QuarantineConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "quarantine"
    verbose_name = "Quarantine"
