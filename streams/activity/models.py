"""Standardized sensor readings and user activity (seed 003), as the sink stores them.

Each row is keyed by the origin of the raw message it came from (topic,
partition, offset), which the `standardize` consumer carries in the processed
message: a replayed processed message is stored once.
"""

from __future__ import annotations

from django.db import models


class _Origin(models.Model):
    event_id = models.CharField(max_length=300, help_text="origin topic:partition:offset")
    origin_topic = models.CharField(max_length=249)
    origin_partition = models.IntegerField()
    origin_offset = models.BigIntegerField()
    timestamp = models.DateTimeField(help_text="Event time, UTC.")
    stored_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True


class SensorReading(_Origin):
    class Status(models.TextChoices):
        LOW = "Low"
        NORMAL = "Normal"
        WARNING = "Warning"

    sensor_id = models.CharField(max_length=128, db_index=True)
    temperature_celsius = models.FloatField()
    humidity_percent = models.FloatField()
    status = models.CharField(max_length=16, choices=Status.choices, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["origin_topic", "origin_partition", "origin_offset"], name="sensorreading_origin",
            ),
        ]
        indexes = [models.Index(fields=["timestamp"], name="sensorreading_timestamp")]
        ordering = ["-timestamp", "-id"]

    def __str__(self) -> str:
        return f"{self.sensor_id} {self.temperature_celsius}°C {self.status}"


class ActivityEvent(_Origin):
    user_id = models.CharField(max_length=128, db_index=True)
    session_id = models.CharField(max_length=128)
    action = models.CharField(max_length=64, db_index=True)
    details = models.JSONField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["origin_topic", "origin_partition", "origin_offset"], name="activityevent_origin",
            ),
        ]
        indexes = [
            models.Index(fields=["timestamp"], name="activityevent_timestamp"),
            # `?session_id=` and the admin's search: without it, a session's events were a scan.
            models.Index(fields=["session_id"], name="activityevent_session"),
        ]
        ordering = ["-timestamp", "-id"]

    def __str__(self) -> str:
        return f"{self.user_id} {self.action}"
