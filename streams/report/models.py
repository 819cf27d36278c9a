"""The correlation report (seed 000): which machine parameters go with each product's output."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class CorrelationReport(models.Model):
    """One run of the report, with everything needed to reproduce it."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    class Trigger(models.TextChoices):
        ADMIN = "admin", "Admin"
        API = "api", "API"
        SCHEDULE = "schedule", "Schedule"
        SHELL = "shell", "Shell"

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    trigger = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.SHELL)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    method = models.CharField(max_length=64, blank=True)
    parameters = models.JSONField(default=dict, blank=True, help_text="The method's parameters for this run.")
    time_from = models.BigIntegerField(null=True, blank=True, help_text="Requested input window start (epoch s).")
    time_to = models.BigIntegerField(null=True, blank=True, help_text="Requested input window end (epoch s).")
    input_time_min = models.BigIntegerField(null=True, blank=True, help_text="Earliest input reading used.")
    input_time_max = models.BigIntegerField(null=True, blank=True, help_text="Latest input reading used.")
    metric_count = models.IntegerField(default=0)
    workorder_count = models.IntegerField(default=0)
    input_digest = models.CharField(max_length=64, blank=True, help_text="SHA-256 of the inputs used.")
    duration_ms = models.IntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("build_correlationreport", "Can build correlation reports")]

    def __str__(self) -> str:
        return f"Correlation report #{self.pk} ({self.status})"


class CorrelationRow(models.Model):
    """One parameter of one product: rank, r against output per interval and against the raw series."""

    report = models.ForeignKey(CorrelationReport, on_delete=models.CASCADE, related_name="rows")
    product = models.IntegerField()
    rank = models.IntegerField()
    parameter_id = models.IntegerField()
    correlation = models.FloatField(null=True, blank=True, help_text="Pearson r of the ranking series.")
    samples = models.IntegerField(default=0)
    p_value = models.FloatField(null=True, blank=True)
    interval_correlation = models.FloatField(null=True, blank=True)
    interval_samples = models.IntegerField(default=0)
    interval_p_value = models.FloatField(null=True, blank=True)
    raw_correlation = models.FloatField(null=True, blank=True)
    raw_samples = models.IntegerField(default=0)
    raw_p_value = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["report", "product", "rank"]
        constraints = [
            models.UniqueConstraint(fields=["report", "product", "parameter_id"], name="correlationrow_unique"),
        ]

    def __str__(self) -> str:
        return f"product {self.product} #{self.rank}: parameter {self.parameter_id}"
