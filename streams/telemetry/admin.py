"""Admin of the telemetry pipeline: stored metrics and work orders, and overwritten readings.

Discovered through streams/admin.py.
"""

from __future__ import annotations

from django.contrib import admin

from console.admin_base import DeletableReadOnlyAdmin, ReadOnlyAdmin

from .models import MachineMetric, TelemetryOverwrite, WorkOrderReading


@admin.register(MachineMetric)
class MachineMetricAdmin(DeletableReadOnlyAdmin):
    list_display = ["parameter_id", "value", "time", "received_at"]
    list_filter = ["parameter_id"]
    search_fields = ["=parameter_id", "=time"]
    show_full_result_count = False


@admin.register(WorkOrderReading)
class WorkOrderReadingAdmin(DeletableReadOnlyAdmin):
    list_display = ["product", "production", "time", "received_at"]
    list_filter = ["product"]
    search_fields = ["=product", "=time"]
    show_full_result_count = False


@admin.register(TelemetryOverwrite)
class TelemetryOverwriteAdmin(ReadOnlyAdmin):
    """Readings replaced by another reading with the same key and second (nothing collapses silently)."""

    list_display = ["kind", "key", "time", "old_value", "new_value", "recorded_at"]
    list_filter = ["kind"]
    search_fields = ["=key", "=time"]
