"""Admin of the correlation report: the list with a Build button, each report's ranking
per product (a table and an SVG bar chart), CSV download, and rebuild.

Building needs `streams.build_correlationreport`. Discovered through
streams/admin.py.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.models import ADDITION
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseRedirect, StreamingHttpResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from console.admin_base import DeletableReadOnlyAdmin, log_change

from .export import report_csv_lines
from .models import CorrelationReport, CorrelationRow
from .services import report_request


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
class CorrelationReportAdmin(DeletableReadOnlyAdmin):
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
        log_change(request, report, "Requested from the admin", ADDITION)
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
            log_change(request, earlier, f"Rebuilt as report #{report.pk}")
            created.append(report.pk)
        self.message_user(request, f"Queued report(s) {', '.join(f'#{pk}' for pk in created)}.", messages.SUCCESS)
