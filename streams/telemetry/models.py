"""Telemetry rows (seed 000)."""

from __future__ import annotations

from django.db import models


class MachineMetric(models.Model):
    """One reading of a machine parameter (seed 000 `metrics`: id, val, time)."""

    parameter_id = models.IntegerField(help_text="Machine parameter id (`id` in the event).")
    value = models.FloatField(help_text="`val` in the event.")
    time = models.BigIntegerField(help_text="Epoch seconds (`time` in the event).")
    received_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["parameter_id", "time"], name="machinemetric_natural_key"),
        ]
        indexes = [models.Index(fields=["time"])]
        ordering = ["time", "parameter_id"]
        # What a service account's token is for: POST /api/metrics/ and /api/workorders/.
        permissions = [("publish_telemetry", "Can publish telemetry events (metrics and work orders)")]

    def __str__(self) -> str:
        return f"parameter {self.parameter_id} = {self.value} at {self.time}"


class WorkOrderReading(models.Model):
    """Cumulative production of a product's running work order (seed 000 `workorders`)."""

    product = models.IntegerField()
    production = models.FloatField(help_text="Cumulative output of the running work order.")
    time = models.BigIntegerField(help_text="Epoch seconds.")
    received_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["product", "time"], name="workorderreading_natural_key"),
        ]
        indexes = [models.Index(fields=["time"])]
        ordering = ["time", "product"]

    def __str__(self) -> str:
        return f"product {self.product}: {self.production} at {self.time}"


class TelemetryOverwrite(models.Model):
    """A reading that replaced another one with the same natural key and a different value.

    Metrics are keyed on (id, whole-second time), work orders on (product, time):
    two different readings in the same second keep the later one, and the one it
    replaced is kept here, so no reading disappears without a trace."""

    class Kind(models.TextChoices):
        METRIC = "metric"
        WORKORDER = "workorder"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    key = models.IntegerField(help_text="Parameter id (metric) or product (work order).")
    time = models.BigIntegerField(help_text="Epoch seconds.")
    old_value = models.FloatField(help_text="The value that was replaced.")
    new_value = models.FloatField(help_text="The value stored instead.")
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "key", "time", "old_value", "new_value"],
                                    name="telemetryoverwrite_once"),
        ]
        # The admin's search by key or time (rows are written only when a reading is replaced).
        indexes = [models.Index(fields=["key", "time"], name="telemetryoverwrite_key"),
                   models.Index(fields=["time"], name="telemetryoverwrite_time")]
        ordering = ["-recorded_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.key} at {self.time}: {self.old_value} -> {self.new_value}"
