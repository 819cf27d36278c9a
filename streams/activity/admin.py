"""Admin of the sensor and user-activity streams (seed 003): stored rows, exported as CSV.

Export needs the view permission (the rows hold user and session ids).
Discovered through streams/admin.py.
"""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from console.admin_base import DeletableReadOnlyAdmin

from .export import ACTIVITY, SENSOR, csv_download
from .models import ActivityEvent, SensorReading


class _ReadingAdmin(DeletableReadOnlyAdmin):
    kind = ""
    actions = ["export_csv"]

    @admin.action(permissions=["view"], description="Export selected as CSV")
    def export_csv(self, request: HttpRequest, queryset):
        return csv_download(self.kind, queryset)


@admin.register(SensorReading)
class SensorReadingAdmin(_ReadingAdmin):
    kind = SENSOR
    list_display = ["timestamp", "sensor_id", "temperature_celsius", "humidity_percent", "status", "event_id"]
    list_filter = ["status", "timestamp"]
    date_hierarchy = "timestamp"
    search_fields = ["sensor_id", "event_id"]


@admin.register(ActivityEvent)
class ActivityEventAdmin(_ReadingAdmin):
    kind = ACTIVITY
    list_display = ["timestamp", "user_id", "session_id", "action", "event_id"]
    list_filter = ["action", "timestamp"]
    date_hierarchy = "timestamp"
    search_fields = ["user_id", "session_id", "event_id"]
