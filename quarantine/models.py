"""One place for everything that failed: files, stream messages and tasks.
What operators did to each record is in the console's one audit log
(console.AuditEntry, the record as its subject): `record.audit_entries` is a
record's trail, `QuarantineAuditEntry` the log's quarantine part.

Called by: every module of quarantine; ingest.models links a file to its record;
console's metrics, ops dashboard and the pipelines' tests read them.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.contenttypes.fields import GenericRelation
from django.contrib.contenttypes.models import ContentType
from django.db import models

from console.models import AuditEntry


class QuarantineRecord(models.Model):
    class Source(models.TextChoices):
        FILE = "file", "File"
        MESSAGE = "message", "Stream message"
        TASK = "task", "Celery task"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        RELEASED = "released", "Released"
        REPROCESSED = "reprocessed", "Reprocessed"
        DISCARDED = "discarded", "Discarded"

    source = models.CharField(max_length=16, choices=Source.choices, db_index=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN, db_index=True)
    reason = models.CharField(max_length=500, help_text="Short, human-readable cause.")
    errors = models.JSONField(default=list, blank=True, help_text="Structured errors (capped).")
    error_count = models.PositiveIntegerField(default=0, help_text="All errors, including those not kept.")
    replay_count = models.PositiveIntegerField(default=0)

    # Stream message origin.
    consumer = models.CharField(max_length=64, blank=True, db_index=True)
    topic = models.CharField(max_length=249, blank=True, db_index=True)
    partition = models.IntegerField(null=True, blank=True)
    offset = models.BigIntegerField(null=True, blank=True)
    message_key = models.BinaryField(null=True, blank=True)
    headers = models.JSONField(default=list, blank=True)
    payload = models.BinaryField(null=True, blank=True)

    # File origin.
    file_path = models.CharField(max_length=1024, blank=True)
    file_name = models.CharField(max_length=255, blank=True, db_index=True)
    checksum = models.CharField(max_length=64, blank=True, db_index=True)

    # Task origin (the payload holds {"args": [...], "kwargs": {...}, "queue": ...}).
    task_name = models.CharField(max_length=200, blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    trace_id = models.UUIDField(null=True, blank=True, db_index=True,
                                help_text="The W3C trace id of the message, file or task when it had one.")

    # Resolution: who closed the record, and for discarded records how long
    # the original (payload or file) is kept before the cleanup purges it.
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    discard_reason = models.TextField(blank=True)
    retain_until = models.DateTimeField(
        null=True, blank=True, db_index=True,
        help_text="A discarded record's original is purged after this date.",
    )
    purged_at = models.DateTimeField(null=True, blank=True, help_text="When the original was purged.")

    # The record's trail in the audit log (no column: entries name the record as their subject).
    audit_entries = GenericRelation(AuditEntry, related_query_name="quarantine_record")

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # A replayed batch must not quarantine the same message twice.
            models.UniqueConstraint(
                fields=["consumer", "topic", "partition", "offset"],
                condition=models.Q(source="message"),
                name="quarantine_one_record_per_message",
            ),
            # A task failure reported twice (redelivery) is recorded once.
            models.UniqueConstraint(
                fields=["task_id"],
                condition=models.Q(source="task"),
                name="quarantine_one_record_per_task",
            ),
        ]
        permissions = [
            ("release_quarantinerecord", "Can release quarantine records"),
            ("reprocess_quarantinerecord", "Can reprocess quarantine records"),
            ("discard_quarantinerecord", "Can discard quarantine records"),
        ]

    def __str__(self) -> str:
        if self.source == self.Source.MESSAGE:
            return f"{self.topic}[{self.partition}]@{self.offset}: {self.reason}"
        if self.source == self.Source.FILE:
            text = self.reason if self.reason.startswith(self.file_name) else f"{self.file_name}: {self.reason}"
            return text if len(text) <= 120 else text[:119] + "…"
        return f"{self.task_name}: {self.reason}"

    def payload_text(self, limit: int = 10000) -> str:
        data = bytes(self.payload or b"")[:limit]
        return data.decode("utf-8", errors="replace")

    @property
    def is_open(self) -> bool:
        return self.status == self.Status.OPEN

    @property
    def origin(self) -> str:
        if self.source == self.Source.MESSAGE:
            return f"{self.topic}[{self.partition}]@{self.offset}"
        if self.source == self.Source.FILE:
            return self.file_name or self.file_path
        return f"{self.task_name} ({self.task_id})"


class QuarantineEntries(models.Manager):
    def get_queryset(self) -> models.QuerySet:
        return super().get_queryset().filter(content_type=ContentType.objects.get_for_model(QuarantineRecord))


class QuarantineAuditEntry(AuditEntry):
    """The audit log's entries about quarantine records (a view of console.AuditEntry,
    no table of its own): its admin page, and the actions' names."""

    class Action(models.TextChoices):
        RELEASE = "release", "Release"
        REPROCESS = "reprocess", "Reprocess"
        DISCARD = "discard", "Discard"
        PURGE = "purge", "Purge original"

    objects = QuarantineEntries()

    class Meta:
        proxy = True
        verbose_name = "quarantine audit entry"
        verbose_name_plural = "quarantine audit entries"
