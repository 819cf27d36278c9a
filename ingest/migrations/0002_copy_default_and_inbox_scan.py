"""COPY support and the periodic inbox scan.

* `file_id` of raw sensor data defaults to the transaction-local setting
  `ingest.copy_file_id`, so COPY can send a file's rows exactly as read,
  without repeating the file id on every row (see ingest/loading.py).
* A sequence cache for the raw rows' ids.
* The django-celery-beat schedule of the catch-all inbox scan.
"""

from django.conf import settings
from django.db import migrations


def create_scan_schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every = max(int(settings.INGEST_SCAN_INTERVAL_SECONDS), 1)
    schedule, _ = IntervalSchedule.objects.get_or_create(every=every, period="seconds")
    PeriodicTask.objects.update_or_create(
        name="ingest: scan the inbox",
        defaults={
            "task": "ingest.scan_inbox",
            "interval": schedule,
            "enabled": True,
            "description": "Announces complete inbox files the watcher missed (seed 001).",
        },
    )


def remove_scan_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name="ingest: scan the inbox").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("ingest", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE ingest_sensorreading ALTER COLUMN file_id "
            "SET DEFAULT (current_setting('ingest.copy_file_id'))::bigint",
            "ALTER TABLE ingest_sensorreading ALTER COLUMN file_id DROP DEFAULT",
        ),
        # Ids for a million-row COPY: take them from the sequence a thousand at a time.
        migrations.RunSQL(
            "ALTER TABLE ingest_sensorreading ALTER COLUMN id SET CACHE 1000",
            "ALTER TABLE ingest_sensorreading ALTER COLUMN id SET CACHE 1",
        ),
        migrations.RunPython(create_scan_schedule, remove_scan_schedule),
    ]
