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
