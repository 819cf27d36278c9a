"""The `operators` group also reads Celery task results and the audit log, and
may retry a failed task and revoke a queued one."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

OPERATOR_PERMISSIONS = [
    ("console", "retry_task"), ("console", "revoke_task"), ("console", "view_auditentry"),
    ("django_celery_results", "view_taskresult"),
]


def _permissions(Permission, pairs):
    found = []
    for app_label, codename in pairs:
        found += list(Permission.objects.filter(content_type__app_label=app_label, codename=codename))
    return found


def forwards(apps, schema_editor):
    # Permissions are created after all migrations (post_migrate): create them now.
    for label in ("console", "django_celery_results"):
        app_config = apps.get_app_config(label)
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    operators, _ = Group.objects.get_or_create(name="operators")
    operators.permissions.add(*_permissions(Permission, OPERATOR_PERMISSIONS))


def backwards(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    operators = Group.objects.filter(name="operators").first()
    if operators is not None:
        operators.permissions.remove(*_permissions(Permission, OPERATOR_PERMISSIONS))


class Migration(migrations.Migration):
    dependencies = [
        ("console", "0003_celery_permissions_and_audit"),
        ("django_celery_results", "0014_alter_taskresult_status"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
