"""SensorReading becomes RawSensorReading: named for its pipeline, apart from the activity
pipeline's streams.SensorReading. Nothing moves in the database.

* The table keeps its name (`db_table`, set before the rename), so RenameModel
  renames nothing in PostgreSQL: no lock, no rows copied.
* Django renames the content type itself (contenttypes injects the step after
  RenameModel), so admin log entries keep pointing at these rows.
* The permissions are renamed here (`view_sensorreading` -> `view_rawsensorreading`,
  and their names), in place: every group and user keeps exactly the grants it
  had, now under the names Django gives the renamed model. On a fresh database
  there is nothing to rename: Django creates them under the new names after
  migrating.
"""

from django.db import migrations

ACTIONS = ("add", "change", "delete", "view")
OLD = ("sensorreading", "sensor reading")
NEW = ("rawsensorreading", "raw sensor reading")


def _permissions_rename(apps, *, old: tuple[str, str], new: tuple[str, str]) -> None:
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    User = apps.get_model("auth", "User")
    ingest = Permission.objects.filter(content_type__app_label="ingest")
    for action in ACTIONS:
        stale = ingest.filter(codename=f"{action}_{old[0]}").first()
        if stale is None:
            continue
        taken = ingest.filter(codename=f"{action}_{new[0]}").first()
        if taken is None:
            stale.codename, stale.name = f"{action}_{new[0]}", f"Can {action} {new[1]}"
            stale.save(update_fields=["codename", "name"])
            continue
        # Both exist (the new one was created before this ran): the grants of the old one
        # go to the new one, then the old one goes.
        for through, owner in ((Group.permissions.through, "group_id"), (User.user_permissions.through, "user_id")):
            for owner_id in through.objects.filter(permission_id=stale.pk).values_list(owner, flat=True):
                through.objects.get_or_create(**{owner: owner_id, "permission_id": taken.pk})
        stale.delete()


def forwards(apps, schema_editor) -> None:
    _permissions_rename(apps, old=OLD, new=NEW)


def backwards(apps, schema_editor) -> None:
    _permissions_rename(apps, old=NEW, new=OLD)


class Migration(migrations.Migration):

    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("ingest", "0005_upload_permission"),
    ]

    operations = [
        migrations.AlterModelTable(name="sensorreading", table="ingest_sensorreading"),
        migrations.RenameModel(old_name="SensorReading", new_name="RawSensorReading"),
        migrations.RunPython(forwards, backwards),
    ]
