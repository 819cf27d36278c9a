"""The operators group may release late orders into their final window
(`streams.release_late_orders`, docs/streams.md). Like console/0002: the
permission is created first, as post_migrate would only create it afterwards."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

PERMISSION = ("streams", "release_late_orders")


def forwards(apps, schema_editor):
    app_config = apps.get_app_config("streams")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    operators = Group.objects.filter(name="operators").first()
    if operators is not None:
        operators.permissions.add(*Permission.objects.filter(
            content_type__app_label=PERMISSION[0], codename=PERMISSION[1]))


def backwards(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    operators = Group.objects.filter(name="operators").first()
    if operators is not None:
        operators.permissions.remove(*Permission.objects.filter(
            content_type__app_label=PERMISSION[0], codename=PERMISSION[1]))


class Migration(migrations.Migration):
    dependencies = [
        ("streams", "0009_event_time"),
        ("console", "0002_groups"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
