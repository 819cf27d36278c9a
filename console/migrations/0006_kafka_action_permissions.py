"""The permissions of the Kafka actions on the operations pages (producing a
message, re-driving dead letters from their topic, resetting a group's offsets),
granted to the `operators` group."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

OPERATOR_PERMISSIONS = ["produce_message", "redrive_dead_letters", "reset_offsets"]


def forwards(apps, schema_editor):
    # Permissions are created after all migrations (post_migrate): create them now.
    app_config = apps.get_app_config("console")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    operators, _ = Group.objects.get_or_create(name="operators")
    operators.permissions.add(*Permission.objects.filter(
        content_type__app_label="console", codename__in=OPERATOR_PERMISSIONS))


def backwards(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    operators = Group.objects.filter(name="operators").first()
    if operators is not None:
        operators.permissions.remove(*Permission.objects.filter(
            content_type__app_label="console", codename__in=OPERATOR_PERMISSIONS))


class Migration(migrations.Migration):
    dependencies = [
        ("console", "0005_lag_samples"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="operations",
            options={
                "default_permissions": (),
                "managed": False,
                "permissions": [
                    ("view_operations", "Can view the operations dashboard and the Kafka topics"),
                    ("view_topic_messages", "Can read recent messages of Kafka topics"),
                    ("retry_task", "Can retry a failed Celery task with its original arguments"),
                    ("revoke_task", "Can revoke a queued Celery task"),
                    ("produce_message", "Can produce a message to a Kafka topic (a copy or a new one)"),
                    ("redrive_dead_letters", "Can re-drive dead letters from a dead-letter topic"),
                    ("reset_offsets", "Can reset or skip a consumer group's committed offsets"),
                ],
            },
        ),
        migrations.RunPython(forwards, backwards),
    ]
