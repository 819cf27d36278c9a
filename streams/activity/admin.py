"""Admin of the sensor and user-activity streams (seed 003): stored rows, exported as CSV.

Export needs the view permission (the rows hold user and session ids). Both
tables grow with the traffic, so both lists cost the same at millions of rows
as at none (console/admin_base.py's LargeTableAdmin): the last 24 hours before
the newest event by default, statuses fixed, actions read by a skip scan of
their index, search by exact key (an event id `topic:partition:offset` by the
origin's unique key, at any age), never a count. Discovered through
streams/admin.py.
"""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from console.admin_base import DeletableReadOnlyAdmin, LargeTableAdmin, RecentWindowFilter, distinct_values

from .export import ACTIVITY, SENSOR, csv_download
from .models import ActivityEvent, SensorReading

ACTION_CHOICES = 100  # actions listed as filter choices; any other works by URL


def origin_of(term: str) -> dict | None:
    """The origin key of an event id (`topic:partition:offset`), or None."""
    topic, _, rest = term.rpartition(":")
    topic, _, partition = topic.rpartition(":")
    if not topic or not partition.isdigit() or not rest.isdigit() or len(topic) > 249:
        return None
    if int(partition) > 2**31 - 1 or int(rest) > 2**63 - 1:
        return None
    return {"origin_topic": topic, "origin_partition": int(partition), "origin_offset": int(rest)}


class EventTimeFilter(RecentWindowFilter):
    title = "time (before the newest event)"
    field = "timestamp"


class ActionFilter(admin.SimpleListFilter):
    title = "action"
    parameter_name = "action__exact"

    def lookups(self, request, model_admin):
        return [(a, a) for a in distinct_values(ActivityEvent, "action", limit=ACTION_CHOICES)]

    def queryset(self, request, queryset):
        return queryset.filter(action=self.value()) if self.value() else queryset


class _ReadingAdmin(LargeTableAdmin, DeletableReadOnlyAdmin):
    kind = ""
    actions = ["export_csv"]
    search_help_text = "An event id (topic:partition:offset, any age), or else an id below (exact, in the window)."

    def search_is_keyed(self, term: str) -> bool:
        return origin_of(term) is not None

    def get_search_results(self, request, queryset, search_term):
        origin = origin_of(search_term.strip())
        if origin:
            return queryset.filter(**origin), False
        return super().get_search_results(request, queryset, search_term)

    @admin.action(permissions=["view"], description="Export selected as CSV")
    def export_csv(self, request: HttpRequest, queryset):
        return csv_download(self.kind, queryset)


@admin.register(SensorReading)
class SensorReadingAdmin(_ReadingAdmin):
    kind = SENSOR
    list_display = ["timestamp", "sensor_id", "temperature_celsius", "humidity_percent", "status", "event_id"]
    list_filter = ["status", EventTimeFilter]
    search_fields = ["=sensor_id"]


@admin.register(ActivityEvent)
class ActivityEventAdmin(_ReadingAdmin):
    kind = ACTIVITY
    list_display = ["timestamp", "user_id", "session_id", "action", "event_id"]
    list_filter = [ActionFilter, EventTimeFilter]
    search_fields = ["=user_id", "=session_id"]
