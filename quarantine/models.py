"""One place for everything that failed: files, stream messages and tasks."""

from __future__ import annotations

from django.db import models


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

    # Task origin.
    task_name = models.CharField(max_length=200, blank=True)
    task_id = models.CharField(max_length=64, blank=True)

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
        ]

    def __str__(self) -> str:
        if self.source == self.Source.MESSAGE:
            return f"{self.topic}[{self.partition}]@{self.offset}: {self.reason}"
        if self.source == self.Source.FILE:
            return f"{self.file_name}: {self.reason}"
        return f"{self.task_name}: {self.reason}"

    def payload_text(self, limit: int = 10000) -> str:
        data = bytes(self.payload or b"")[:limit]
        return data.decode("utf-8", errors="replace")
