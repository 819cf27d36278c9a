"""The `operators` group (view + release/reprocess/discard) and the hourly
cleanup of expired discarded originals in Celery beat's schedule."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

OPERATOR_PERMISSIONS = [
    "view_quarantinerecord",
    "release_quarantinerecord",
    "reprocess_quarantinerecord",
    "discard_quarantinerecord",
    "view_quarantineauditentry",
]
CLEANUP_TASK = "quarantine.purge_expired"


def forwards(apps, schema_editor):
    # Permissions are normally created after all migrations (post_migrate);
    # create ours now so the group can be given them on a fresh database.
    app_config = apps.get_app_config("quarantine")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name="operators")
    group.permissions.add(
        *Permission.objects.filter(content_type__app_label="quarantine", codename__in=OPERATOR_PERMISSIONS)
    )

    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every_hour, _ = IntervalSchedule.objects.get_or_create(every=1, period="hours")
    PeriodicTask.objects.get_or_create(
        name="quarantine: purge expired discarded originals",
        defaults={"task": CLEANUP_TASK, "interval": every_hour, "enabled": True},
    )


def backwards(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(task=CLEANUP_TASK).delete()
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group = Group.objects.filter(name="operators").first()
    if group is not None:
        group.permissions.remove(
            *Permission.objects.filter(content_type__app_label="quarantine", codename__in=OPERATOR_PERMISSIONS)
        )


class Migration(migrations.Migration):
    dependencies = [
        ("quarantine", "0002_audit_retention_permissions"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
