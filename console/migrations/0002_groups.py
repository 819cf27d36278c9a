"""The groups the console's roles are made of.

* `telemetry-publishers`: what a service account's token may do, and nothing
  more: publish telemetry and product registrations (`create_service_token`
  puts its accounts here).
* `file-uploaders`: what a machine that uploads sensor files needs: upload
  (`POST /api/files/`) and follow its files (`create_service_token NAME
  --group file-uploaders`).
* `operators` (created by quarantine's 0003 with the quarantine actions):
  also reads every table of the pipelines, edits and deletes products, queues
  and builds reports, uploads and requeues files, and sees the operations
  pages including raw topic messages.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

PUBLISHERS = "telemetry-publishers"
PUBLISHER_PERMISSIONS = [("streams", "publish_telemetry"), ("streams", "register_product")]
UPLOADERS = "file-uploaders"
UPLOADER_PERMISSIONS = [("ingest", "upload_file"), ("ingest", "view_ingestedfile")]

OPERATOR_VIEW_APPS = ["streams", "ingest", "quarantine"]
OPERATOR_PERMISSIONS = [
    ("streams", "change_product"), ("streams", "delete_product"),
    ("streams", "add_correlationreport"), ("streams", "build_correlationreport"),
    ("streams", "change_productwindow"),
    ("ingest", "upload_file"), ("ingest", "change_ingestedfile"),
    ("console", "view_operations"), ("console", "view_topic_messages"),
]


def _permissions(Permission, pairs):
    found = []
    for app_label, codename in pairs:
        found += list(Permission.objects.filter(content_type__app_label=app_label, codename=codename))
    return found


def forwards(apps, schema_editor):
    # Permissions are created after all migrations (post_migrate); create them
    # now so the groups get them on a fresh database too.
    for label in ("console", "streams", "ingest", "quarantine"):
        app_config = apps.get_app_config(label)
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    publishers, _ = Group.objects.get_or_create(name=PUBLISHERS)
    publishers.permissions.add(*_permissions(Permission, PUBLISHER_PERMISSIONS))
    uploaders, _ = Group.objects.get_or_create(name=UPLOADERS)
    uploaders.permissions.add(*_permissions(Permission, UPLOADER_PERMISSIONS))
    operators, _ = Group.objects.get_or_create(name="operators")
    operators.permissions.add(
        *Permission.objects.filter(content_type__app_label__in=OPERATOR_VIEW_APPS, codename__startswith="view_"),
        *_permissions(Permission, OPERATOR_PERMISSIONS),
    )


def backwards(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    Group.objects.filter(name__in=[PUBLISHERS, UPLOADERS]).delete()
    operators = Group.objects.filter(name="operators").first()
    if operators is not None:
        operators.permissions.remove(*_permissions(Permission, OPERATOR_PERMISSIONS))


class Migration(migrations.Migration):
    dependencies = [
        ("console", "0001_operations_permissions"),
        ("streams", "0007_publish_and_register_permissions"),
        ("ingest", "0005_upload_permission"),
        ("quarantine", "0003_operators_group_and_cleanup_schedule"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
