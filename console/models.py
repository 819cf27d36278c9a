"""The console's own models: the permissions of the operations pages, the
audit log of every operator action (the one log: quarantine's actions, Kafka
actions, Celery retries and revokes, releases of late orders), and the lag
history of the operations pages.

`Operations` has no table (managed = False): it only carries the permissions,
so they can be granted to users and groups like any other.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models


class Operations(models.Model):
    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("view_operations", "Can view the operations dashboard and the Kafka topics"),
            # Raw messages carry whatever producers put in them: a permission of their own.
            ("view_topic_messages", "Can read recent messages of Kafka topics"),
            # Celery (console/ops/celery_ops.py): re-running a task and dropping a queued one.
            ("retry_task", "Can retry a failed Celery task with its original arguments"),
            ("revoke_task", "Can revoke a queued Celery task"),
            # Kafka (console/ops/kafka_actions.py): writes to topics and to a group's offsets.
            ("produce_message", "Can produce a message to a Kafka topic (a copy or a new one)"),
            ("redrive_dead_letters", "Can re-drive dead letters from a dead-letter topic"),
            ("reset_offsets", "Can reset or skip a consumer group's committed offsets"),
        ]


class AuditEntry(models.Model):
    """One operator (or system) action, whatever its outcome: the one audit log,
    written only through console/audit.py. `target` names what was acted on in
    words (`task:<id>`, `topic:<name>`, `quarantine-record:<id>`); `subject` is
    the row itself when the action was on one, so that the row's page can show
    its own trail (quarantine records: `QuarantineRecord.audit_entries`)."""

    class Outcome(models.TextChoices):
        SUCCEEDED = "succeeded", "Succeeded"
        REFUSED = "refused", "Refused"
        FAILED = "failed", "Failed"
        # What a dry run answers; a dry run changes nothing and writes no entry.
        DRY_RUN = "dry_run", "Dry run"

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    actor_name = models.CharField(max_length=150, help_text="Username at the time (kept if the user is deleted).")
    action = models.CharField(max_length=64, db_index=True, help_text="e.g. task_retry, task_revoke, release")
    target = models.CharField(max_length=255, db_index=True,
                              help_text="What was acted on, e.g. task:<id>, quarantine-record:<id>")
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    reason = models.TextField(blank=True, help_text="Why, in the operator's words (where the action asks).")
    detail = models.JSONField(default=dict, blank=True)
    content_type = models.ForeignKey(ContentType, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    object_id = models.PositiveBigIntegerField(null=True, blank=True)
    subject = GenericForeignKey("content_type", "object_id")

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = "audit entry"
        verbose_name_plural = "audit entries"
        indexes = [models.Index(fields=["content_type", "object_id"], name="auditentry_subject")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_name} {self.action} {self.target} {self.outcome}"


class LagSample(models.Model):
    """One consumer group's lag on one partition at one sampling (the `console.sample_lag`
    beat task, console/ops/lag_history.py). Every partition of one sampling shares its `at`,
    so a consumer's total lag over time is one GROUP BY. Bounded: samples older than
    CONSOLE_LAG_HISTORY_HOURS are deleted by the same task."""

    at = models.DateTimeField()
    consumer = models.CharField(max_length=100)
    group = models.CharField(max_length=255)
    topic = models.CharField(max_length=249)
    partition = models.IntegerField()
    lag = models.BigIntegerField()
    end_offset = models.BigIntegerField()
    committed = models.BigIntegerField(null=True, blank=True, help_text="None: the group never committed here.")

    class Meta:
        ordering = ["-at", "consumer", "topic", "partition"]
        indexes = [
            models.Index(fields=["consumer", "at"], name="lagsample_consumer_at"),
            models.Index(fields=["at"], name="lagsample_at"),  # the retention's delete
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.consumer} {self.topic}[{self.partition}] lag {self.lag}"
