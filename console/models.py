"""The console's own models: the permissions of the operations pages and the
audit log of operator actions that belong to no app (Celery tasks).

`Operations` has no table (managed = False): it only carries the permissions,
so they can be granted to users and groups like any other.
"""

from __future__ import annotations

from django.conf import settings
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
    """One operator action on something that is not a quarantine record (those
    keep their own trail, quarantine.QuarantineAuditEntry), whatever its outcome."""

    class Outcome(models.TextChoices):
        SUCCEEDED = "succeeded", "Succeeded"
        REFUSED = "refused", "Refused"
        FAILED = "failed", "Failed"

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    actor_name = models.CharField(max_length=150, help_text="Username at the time (kept if the user is deleted).")
    action = models.CharField(max_length=64, db_index=True, help_text="e.g. task_retry, task_revoke")
    target = models.CharField(max_length=255, db_index=True, help_text="What was acted on, e.g. task:<id>")
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = "audit entry"
        verbose_name_plural = "audit entries"

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
