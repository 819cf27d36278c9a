"""Admin screens of file ingestion: files with progress and errors, raw data
and statistics (read-only, never counted, choices from the overall statistics:
console/admin_base.py's LargeTableAdmin).

Called by: Django's admin site (autodiscovery). The requeue action calls
services.files_requeue_failed; reads go through selectors.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join

from console.admin_base import BoundedPaginator, LargeTableAdmin, ReadOnlyAdmin, RecentWindowFilter

from . import selectors, services
from .models import InboxEntry, IngestedFile, RawSensorReading, SensorAggregate


@admin.register(IngestedFile)
class IngestedFileAdmin(ReadOnlyAdmin):
    list_display = ["id", "name", "status", "progress_bar", "rows_total", "rows_loaded", "rows_rejected",
                    "errors_link", "load_seconds", "created_at"]
    list_filter = ["status", "created_at"]
    search_fields = ["name", "path", "checksum"]
    readonly_fields = ["path", "name", "checksum", "size", "status", "progress_bar", "rows_total", "rows_valid",
                       "rows_rejected", "rows_loaded", "reason", "error_count", "error_table", "duplicate_of",
                       "quarantine_link", "release_mode", "attempts", "task_id", "created_at", "started_at",
                       "finished_at", "load_seconds", "timings"]
    exclude = ["errors", "quarantine", "bytes_done", "updated_at"]
    actions = ["requeue_failed"]

    def has_requeue_permission(self, request) -> bool:
        return request.user.has_perm("ingest.change_ingestedfile")

    @admin.action(permissions=["requeue"], description="Process failed files again")
    def requeue_failed(self, request, queryset):
        queued = services.files_requeue_failed(file_ids=queryset.values_list("id", flat=True), by=request.user)
        for ingested in IngestedFile.objects.filter(id__in=queued):
            self.log_change(request, ingested, "Queued again for processing.")
        skipped = queryset.count() - len(queued)
        level = messages.SUCCESS if queued else messages.WARNING
        self.message_user(request, f"{len(queued)} file(s) queued again; {skipped} skipped (only failed files "
                                   "still in the inbox can be processed again).", level)


    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        if IngestedFile.objects.filter(status__in=IngestedFile.IN_PROGRESS).exists():
            response["Refresh"] = "3"
        return response

    @admin.display(description="progress")
    def progress_bar(self, obj: IngestedFile):
        return format_html('<progress value="{}" max="100" title="{}%"></progress> {}', obj.percent_done,
                           obj.percent_done, obj.progress)

    @admin.display(description="errors")
    def errors_link(self, obj: IngestedFile):
        if not obj.error_count:
            return "-"
        url = reverse("admin:ingest_ingestedfile_change", args=[obj.pk]) + "#errors"
        return format_html('<a href="{}">{} error(s)</a>', url, f"{obj.error_count:,}")

    @admin.display(description="quarantine record")
    def quarantine_link(self, obj: IngestedFile):
        if obj.quarantine_id is None:
            return "-"
        try:
            url = reverse("admin:quarantine_quarantinerecord_change", args=[obj.quarantine_id])
        except NoReverseMatch:
            return f"#{obj.quarantine_id}"
        return format_html('<a href="{}">#{}</a>', url, obj.quarantine_id)

    @admin.display(description="errors (line, column, value, rule)")
    def error_table(self, obj: IngestedFile):
        if not obj.errors:
            return "-"
        rows = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            ((e.get("line", ""), e.get("column") or "", e.get("value", ""), e.get("rule", ""), e.get("message", ""))
             for e in obj.errors[:500]),
        )
        more = obj.error_count - min(len(obj.errors), 500)
        return format_html(
            '<table id="errors"><thead><tr><th>line</th><th>column</th><th>value</th><th>rule</th>'
            "<th>message</th></tr></thead><tbody>{}</tbody></table>{}",
            rows, f"… and {more:,} more (counted, not kept)" if more > 0 else "",
        )


class NewestFirstPaginator(BoundedPaginator):
    """Pages of raw rows from id windows (selectors.reading_page): the raw table
    has no B-tree to walk in id order (nor to count in it: a capped count reads
    the rows as they lie)."""

    count_in_order = False

    def page(self, number):
        number = self.validate_number(number)
        offset = (number - 1) * self.per_page
        rows = selectors.reading_page(self.object_list, limit=self.per_page, offset=offset)
        return self._get_page(rows, number, self)


class DeviceFilter(admin.SimpleListFilter):
    """Devices from the (small) overall statistics, never from the raw rows."""

    title = "device"
    parameter_name = "device"

    def lookups(self, request, model_admin):
        return [(d, d) for d in selectors.known_devices()]

    def queryset(self, request, queryset):
        return queryset.filter(device=self.value()) if self.value() else queryset


class RecentDataFilter(RecentWindowFilter):
    """Time windows ending at the newest loaded reading (sensor data is often old);
    all rows by default, as the pages read id windows anyway. Any range also works
    by URL: ?recorded_at__gte=2020-07-12&recorded_at__lt=2020-07-13"""

    title = "time (before the newest reading)"
    field = "recorded_at"
    default = None

    def newest(self, model):
        latest = selectors.reading_page(RawSensorReading.objects.all(), limit=1)
        return latest[0].recorded_at if latest else None


class MetricFilter(admin.SimpleListFilter):
    """Metrics from the overall statistics (one row per device and metric)."""

    title = "metric"
    parameter_name = "metric"

    def lookups(self, request, model_admin):
        return [(m, m) for m in selectors.known_metrics()]

    def queryset(self, request, queryset):
        return queryset.filter(metric=self.value()) if self.value() else queryset


@admin.register(RawSensorReading)
class RawSensorReadingAdmin(LargeTableAdmin, ReadOnlyAdmin):
    list_display = ["id", "device", "recorded_at", "ts", "co", "humidity", "light", "lpg", "motion", "smoke",
                    "temp", "file_id"]
    list_filter = [DeviceFilter, RecentDataFilter]
    paginator = NewestFirstPaginator
    ordering = ["-id"]

    def lookup_allowed(self, lookup, value, request=None) -> bool:
        if lookup in ("recorded_at__gte", "recorded_at__lt", "file__id__exact", "file_id"):
            return True
        return super().lookup_allowed(lookup, value, request)



@admin.register(SensorAggregate)
class SensorAggregateAdmin(LargeTableAdmin, ReadOnlyAdmin):
    """Rows per file, device and metric: grows with the files. Choices come from the overall rows."""

    list_display = ["device", "metric", "scope", "count", "min", "max", "mean", "std", "median", "updated_at"]
    list_filter = [MetricFilter, ("file", admin.EmptyFieldListFilter), DeviceFilter]
    search_fields = ["=device"]
    ordering = ["-file_id", "device", "metric"]  # the unique key's order: the overall rows, then the newest file

    @admin.display(description="scope")
    def scope(self, obj: SensorAggregate):
        if obj.file_id is None:
            return "overall"
        url = reverse("admin:ingest_ingestedfile_change", args=[obj.file_id])
        return format_html('<a href="{}">file #{}</a>', url, obj.file_id)


@admin.register(InboxEntry)
class InboxEntryAdmin(ReadOnlyAdmin):
    list_display = ["path", "size", "checksum", "published_at"]
    search_fields = ["path", "checksum"]
