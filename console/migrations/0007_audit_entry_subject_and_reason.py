"""The audit log becomes the one log of every operator action: an entry may
name the row it was about (`subject`: content type and id, so a quarantine
record's page shows its trail) and the operator's reason; a dry run is an
outcome the services answer with (never stored). Quarantine's own entries are
moved in by quarantine/0004."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("console", "0006_kafka_action_permissions"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.AddField(
            model_name="auditentry",
            name="reason",
            field=models.TextField(blank=True, help_text="Why, in the operator's words (where the action asks)."),
        ),
        migrations.AddField(
            model_name="auditentry",
            name="content_type",
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT,
                                    related_name="+", to="contenttypes.contenttype"),
        ),
        migrations.AddField(
            model_name="auditentry",
            name="object_id",
            field=models.PositiveBigIntegerField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="auditentry",
            name="action",
            field=models.CharField(db_index=True, help_text="e.g. task_retry, task_revoke, release", max_length=64),
        ),
        migrations.AlterField(
            model_name="auditentry",
            name="target",
            field=models.CharField(db_index=True, help_text="What was acted on, e.g. task:<id>, quarantine-record:<id>",
                                   max_length=255),
        ),
        migrations.AlterField(
            model_name="auditentry",
            name="outcome",
            field=models.CharField(choices=[("succeeded", "Succeeded"), ("refused", "Refused"), ("failed", "Failed"),
                                            ("dry_run", "Dry run")], max_length=16),
        ),
        migrations.AddIndex(
            model_name="auditentry",
            index=models.Index(fields=["content_type", "object_id"], name="auditentry_subject"),
        ),
    ]
