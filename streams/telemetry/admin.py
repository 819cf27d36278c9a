"""Admin of the telemetry pipeline: stored metrics and work orders, and overwritten readings.

Every list grows with the machines, so each costs the same at millions of rows
as at none (console/admin_base.py's LargeTableAdmin): newest first, the last
hour before the newest reading by default, parameters and products read by a
skip scan of the natural key's index, search by exact key, never a count.
Discovered through streams/admin.py.
"""

from __future__ import annotations

from django.contrib import admin

from console.admin_base import (DeletableReadOnlyAdmin, LargeTableAdmin, ReadOnlyAdmin, RecentWindowFilter,
                                distinct_values)

from .models import MachineMetric, TelemetryOverwrite, WorkOrderReading

KEY_CHOICES = 100  # parameters or products listed as filter choices; any other works by search or URL


class KeyFilter(admin.SimpleListFilter):
    """Values of the first column of the natural key, by a skip scan of its index."""

    field = ""

    def lookups(self, request, model_admin):
        return [(v, v) for v in distinct_values(model_admin.model, self.field, limit=KEY_CHOICES)]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        try:
            return queryset.filter(**{self.field: int(self.value())})
        except ValueError:
            return queryset.none()


class ParameterFilter(KeyFilter):
    title = "parameter"
    parameter_name = field = "parameter_id"


class ProductFilter(KeyFilter):
    title = "product"
    parameter_name = field = "product"


class ReadingTimeFilter(RecentWindowFilter):
    title = "time (before the newest reading)"
    field = "time"
    epoch = True
    default = "1h"


@admin.register(MachineMetric)
class MachineMetricAdmin(LargeTableAdmin, DeletableReadOnlyAdmin):
    list_display = ["parameter_id", "value", "time", "received_at"]
    list_filter = [ParameterFilter, ReadingTimeFilter]
    search_fields = ["=parameter_id", "=time"]
    ordering = ["-time", "-parameter_id"]


@admin.register(WorkOrderReading)
class WorkOrderReadingAdmin(LargeTableAdmin, DeletableReadOnlyAdmin):
    list_display = ["product", "production", "time", "received_at"]
    list_filter = [ProductFilter, ReadingTimeFilter]
    search_fields = ["=product", "=time"]
    ordering = ["-time", "-product"]


@admin.register(TelemetryOverwrite)
class TelemetryOverwriteAdmin(LargeTableAdmin, ReadOnlyAdmin):
    """Readings replaced by another reading with the same key and second (nothing collapses silently).
    Newest first by id (the key's order of arrival); searched by key or time, each indexed."""

    list_display = ["kind", "key", "time", "old_value", "new_value", "recorded_at"]
    list_filter = ["kind"]
    search_fields = ["=key", "=time"]
    ordering = ["-id"]
