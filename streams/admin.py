"""Admin of the streams app: telemetry rows, the product catalog, correlation reports."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseRedirect, StreamingHttpResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from console.admin_base import ReadOnlyAdmin as BaseReadOnlyAdmin

from .models import (
    ConsumerHeartbeat, CorrelationReport, CorrelationRow, MachineMetric, Product, TelemetryOverwrite,
    WorkOrderReading,
)
from .products import product_soft_delete
from .report import report_csv_lines, report_request


def _log(request: HttpRequest, obj, message: str, flag: int = CHANGE) -> None:
    LogEntry.objects.log_actions(user_id=request.user.pk, queryset=[obj], action_flag=flag,
                                 change_message=message, single_object=True)


class ReadOnlyAdmin(BaseReadOnlyAdmin):
    deletable = True  # these rows may be deleted by hand, with the usual delete permission


@admin.register(MachineMetric)
class MachineMetricAdmin(ReadOnlyAdmin):
    list_display = ["parameter_id", "value", "time", "received_at"]
    list_filter = ["parameter_id"]
    search_fields = ["=parameter_id", "=time"]
    show_full_result_count = False


@admin.register(WorkOrderReading)
class WorkOrderReadingAdmin(ReadOnlyAdmin):
    list_display = ["product", "production", "time", "received_at"]
    list_filter = ["product"]
    search_fields = ["=product", "=time"]
    show_full_result_count = False


@admin.register(TelemetryOverwrite)
class TelemetryOverwriteAdmin(BaseReadOnlyAdmin):
    """Readings replaced by another reading with the same key and second (nothing collapses silently)."""

    list_display = ["kind", "key", "time", "old_value", "new_value", "recorded_at"]
    list_filter = ["kind"]
    search_fields = ["=key", "=time"]


@admin.register(ConsumerHeartbeat)
class ConsumerHeartbeatAdmin(BaseReadOnlyAdmin):
    """Every consumer process's last heartbeat: state, reason, counters."""

    list_display = ["consumer", "member", "state", "reason", "beat_at", "last_batch_at", "messages", "applied",
                    "dead_lettered", "refused"]
    list_filter = ["state", "consumer"]


class DeletedFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("active", "Active"), ("deleted", "Deleted")]

    def queryset(self, request, queryset):
        if self.value() == "active":
            return queryset.filter(deleted_at__isnull=True)
        if self.value() == "deleted":
            return queryset.filter(deleted_at__isnull=False)
        return queryset


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["product_id", "name", "category", "price", "currency", "stock_quantity",
                    "availability_timestamp", "updated_at", "deleted_at"]
    list_filter = [DeletedFilter, "category", "currency"]
    search_fields = ["product_id", "name", "category"]
    readonly_fields = ["product_id", "payload", "availability_timestamp", "created_at", "updated_at", "deleted_at"]
    fields = ["product_id", "name", "description", "price", "currency", "stock_quantity", "category",
              "availability_timestamp", "payload", "created_at", "updated_at", "deleted_at"]
    actions = ["soft_delete", "restore"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # products are registered through Kafka (POST /api/products/register/)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # deletes are soft: the orders pipeline still resolves deleted products

    @admin.action(permissions=["change"], description="Soft-delete the selected products")
    def soft_delete(self, request, queryset):
        count = 0
        for product in queryset.filter(deleted_at__isnull=True):
            product_soft_delete(product=product)
            _log(request, product, "Soft-deleted from the admin")
            count += 1
        self.message_user(request, f"{count} product(s) soft-deleted.", messages.SUCCESS)

    @admin.action(permissions=["change"], description="Restore the selected (soft-deleted) products")
    def restore(self, request, queryset):
        count = 0
        for product in queryset.filter(deleted_at__isnull=False):
            product.deleted_at = None
            product.save(update_fields=["deleted_at", "updated_at"])
            _log(request, product, "Restored from the admin")
            count += 1
        self.message_user(request, f"{count} product(s) restored.", messages.SUCCESS)


def _fmt(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def ranking_svg(rows: list[CorrelationRow]) -> SafeString:
    """A horizontal bar chart of r per parameter (rank order), -1 .. +1 around a zero axis."""
    row_h, label_w, half = 18, 90, 220
    width, height = label_w + 2 * half + 70, row_h * len(rows) + 24
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="correlation by parameter" style="font:11px sans-serif">',
        f'<line x1="{label_w + half}" y1="0" x2="{label_w + half}" y2="{height - 18}" stroke="#888"/>',
        f'<text x="{label_w}" y="{height - 4}">-1</text>'
        f'<text x="{label_w + half - 3}" y="{height - 4}">0</text>'
        f'<text x="{label_w + 2 * half - 8}" y="{height - 4}">+1</text>',
    ]
    for i, row in enumerate(rows):
        y = i * row_h + 2
        parts.append(f'<text x="0" y="{y + 12}">#{int(row.rank)} param {int(row.parameter_id)}</text>')
        if row.correlation is None:
            parts.append(f'<text x="{label_w + half + 4}" y="{y + 12}" fill="#888">n/a</text>')
            continue
        r = float(row.correlation)
        w = abs(r) * half
        x = label_w + half if r >= 0 else label_w + half - w
        color = "#2e7d32" if r >= 0 else "#c62828"
        parts.append(f'<rect x="{x:.1f}" y="{y}" width="{max(w, 0.5):.1f}" height="{row_h - 4}" fill="{color}">'
                     f'<title>r={r:+.4f} n={int(row.samples)}</title></rect>')
        parts.append(f'<text x="{label_w + 2 * half + 6}" y="{y + 12}">{r:+.3f}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # every interpolated value is a number we formatted


class CorrelationRowInline(admin.TabularInline):
    model = CorrelationRow
    extra = 0
    can_delete = False
    fields = readonly_fields = ["product", "rank", "parameter_id", "correlation", "samples", "p_value",
                                "raw_correlation", "raw_samples", "raw_p_value"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(CorrelationReport)
class CorrelationReportAdmin(ReadOnlyAdmin):
    change_list_template = "admin/streams/correlationreport/change_list.html"
    list_display = ["__str__", "status", "trigger", "requested_by", "method", "metric_count", "workorder_count",
                    "duration_ms", "created_at", "csv_link"]
    list_filter = ["status", "trigger"]
    readonly_fields = ["status", "trigger", "requested_by", "method", "parameters", "time_from", "time_to",
                       "input_time_min", "input_time_max", "metric_count", "workorder_count", "input_digest",
                       "duration_ms", "error", "created_at", "finished_at", "csv_link", "ranking"]
    fieldsets = [
        (None, {"fields": ["status", "trigger", "requested_by", "created_at", "finished_at", "duration_ms",
                           "error", "csv_link"]}),
        ("Ranking", {"fields": ["ranking"]}),
        ("Reproducibility", {"fields": ["method", "parameters", "time_from", "time_to", "input_time_min",
                                        "input_time_max", "metric_count", "workorder_count", "input_digest"]}),
    ]
    actions = ["rebuild"]

    def has_build_permission(self, request) -> bool:
        return request.user.has_perm("streams.build_correlationreport")

    @admin.display(description="CSV")
    def csv_link(self, report: CorrelationReport) -> str:
        if report.status != CorrelationReport.Status.DONE:
            return "–"
        return format_html('<a href="{}">report.csv</a>',
                           reverse("admin:streams_correlationreport_csv", args=[report.pk]))

    @admin.display(description="Ranking per product")
    def ranking(self, report: CorrelationReport) -> SafeString:
        rows = list(report.rows.order_by("product", "rank"))
        if not rows:
            return mark_safe("<p>No rows (yet).</p>")
        blocks = []
        for product in sorted({r.product for r in rows}):
            own = [r for r in rows if r.product == product]
            table = format_html_join(
                "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                ((r.rank, r.parameter_id, _fmt(r.correlation, "+.4f"), r.samples, _fmt(r.p_value, ".3g"),
                  _fmt(r.raw_correlation, "+.4f"), _fmt(r.raw_p_value, ".3g")) for r in own),
            )
            blocks.append(format_html(
                '<h3>Product {}</h3><div style="display:flex;gap:24px;align-items:flex-start">'
                '<table><thead><tr><th>rank</th><th>parameter</th><th>r</th><th>samples</th><th>p-value</th>'
                '<th>r (raw)</th><th>p (raw)</th></tr></thead><tbody>{}</tbody></table>{}</div>',
                product, table, ranking_svg(own),
            ))
        return mark_safe("".join(blocks))

    def get_urls(self):
        own = [
            path("build/", self.admin_site.admin_view(self.build_view), name="streams_correlationreport_build"),
            path("<int:pk>/csv/", self.admin_site.admin_view(self.csv_view), name="streams_correlationreport_csv"),
        ]
        return own + super().get_urls()

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_build": self.has_build_permission(request)}
        return super().changelist_view(request, extra_context)

    def build_view(self, request: HttpRequest):
        if request.method != "POST":
            return HttpResponseRedirect(reverse("admin:streams_correlationreport_changelist"))
        if not self.has_build_permission(request):
            raise PermissionDenied
        report = report_request(trigger=CorrelationReport.Trigger.ADMIN, by=request.user)
        _log(request, report, "Requested from the admin", ADDITION)
        self.message_user(request, f"Report #{report.pk} queued; it appears here when the worker has built it.",
                          messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:streams_correlationreport_change", args=[report.pk]))

    def csv_view(self, request: HttpRequest, pk: int):
        if not self.has_view_permission(request):
            raise PermissionDenied
        report = CorrelationReport.objects.get(pk=pk)
        response = StreamingHttpResponse(report_csv_lines(report=report), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="correlation-report-{report.pk}.csv"'
        return response

    @admin.action(permissions=["build"], description="Rebuild with the same window and parameters")
    def rebuild(self, request, queryset):
        created = []
        for earlier in queryset:
            report = report_request(trigger=CorrelationReport.Trigger.ADMIN, by=request.user,
                                    time_from=earlier.time_from, time_to=earlier.time_to,
                                    parameters=earlier.parameters)
            _log(request, earlier, f"Rebuilt as report #{report.pk}")
            created.append(report.pk)
        self.message_user(request, f"Queued report(s) {', '.join(f'#{pk}' for pk in created)}.", messages.SUCCESS)

