"""Quarantine's audit entries move into the console's one audit log
(console.AuditEntry, with the record as the entry's subject), and
QuarantineAuditEntry becomes a view of that log (a proxy, no table).

Every row is copied as it is (time, actor, action, outcome, reason, details),
in one INSERT ... SELECT, before the old table is dropped; the entries get the
log's own ids. The permissions of `quarantineauditentry` stay (the proxy keeps
its content type), and so do the groups that hold them. Reversible: the way
back copies the entries about records into a new old table and removes them
from the log.
"""

from django.db import migrations

TARGET_PREFIX = "quarantine-record:"


def _tables(apps):
    entry = apps.get_model("console", "AuditEntry")._meta.db_table
    old = apps.get_model("quarantine", "QuarantineAuditEntry")._meta.db_table
    record = apps.get_model("quarantine", "QuarantineRecord")._meta.db_table
    return entry, old, record


def into_console_log(apps, schema_editor):
    entry, old, _ = _tables(apps)
    connection = schema_editor.connection
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {quote(old)})")
        if not cursor.fetchone()[0]:
            return
        ContentType = apps.get_model("contenttypes", "ContentType")
        record_type, _ = ContentType.objects.using(connection.alias).get_or_create(
            app_label="quarantine", model="quarantinerecord")
        cursor.execute(
            f"INSERT INTO {quote(entry)} (at, actor_id, actor_name, action, target, outcome, reason, detail,"
            f" content_type_id, object_id)"
            f" SELECT at, actor_id, actor_name, action, %s || CAST(record_id AS text), outcome, reason, details, %s, record_id"
            f" FROM {quote(old)} ORDER BY at, id",
            [TARGET_PREFIX, record_type.pk],
        )


def out_of_console_log(apps, schema_editor):
    entry, old, record = _tables(apps)
    connection = schema_editor.connection
    quote = connection.ops.quote_name
    ContentType = apps.get_model("contenttypes", "ContentType")
    record_type = ContentType.objects.using(connection.alias).filter(
        app_label="quarantine", model="quarantinerecord").first()
    if record_type is None:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(old)} (record_id, actor_id, actor_name, at, action, reason, outcome, details)"
            f" SELECT e.object_id, e.actor_id, e.actor_name, e.at, e.action, e.reason, e.outcome, e.detail"
            f" FROM {quote(entry)} e JOIN {quote(record)} r ON r.id = e.object_id"
            f" WHERE e.content_type_id = %s ORDER BY e.at, e.id",
            [record_type.pk],
        )
        cursor.execute(f"DELETE FROM {quote(entry)} WHERE content_type_id = %s", [record_type.pk])


class Migration(migrations.Migration):

    dependencies = [
        ("quarantine", "0003_operators_group_and_cleanup_schedule"),
        ("console", "0007_audit_entry_subject_and_reason"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.RunPython(into_console_log, out_of_console_log),
        migrations.DeleteModel(name="QuarantineAuditEntry"),
        migrations.CreateModel(
            name="QuarantineAuditEntry",
            fields=[],
            options={
                "verbose_name": "quarantine audit entry",
                "verbose_name_plural": "quarantine audit entries",
                "proxy": True,
                "indexes": [],
                "constraints": [],
            },
            bases=("console.auditentry",),
        ),
    ]
