"""The operations pages inside the admin (what operators otherwise open Kafdrop or
kafka-ui for): their URLs and permissions (`urls()`), and the views of the dashboard
(services and live lag), the pipeline map (topology.py, map_svg.py), the trace page (find
an event and its path: trace.py), a consumer's page and Celery's workers and queues. The topic
and message pages are console/ops/topic_pages.py, the offset reset console/ops/offsets.py.

Views only: what the dashboards and a consumer's page show is read by
console/ops/dashboard.py, the Celery page's by console/ops/celery_ops.py.

Staff only (the admin's login), and each page needs its permission on top:
`console.view_operations` for the dashboard, the map, the trace page, the topics and
Celery's workers and queues, `console.view_topic_messages` for raw messages, which carry
whatever the producers put in them (the message browser, console/ops/topic_pages.py),
`console.produce_message` and `console.redrive_dead_letters` to write to topics
from there, and `console.revoke_task` to revoke a queued task. The `operators`
group has them all.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.contrib import messages as admin_messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.template.response import TemplateResponse
from django.urls import path, reverse

from . import celery_ops, topic_pages, topology, trace
from ..audit import ActionError
from .dashboard import consumer_page, dashboard_overview, services_overview
from .lag_history import lines_svg
from .map_svg import map_svg
from .offsets import RESET_OFFSETS, offsets_apply, offsets_plan


def _context(request: HttpRequest, title: str, **extra) -> dict:
    return {**admin.site.each_context(request), "title": title, **extra}


def dashboard(request: HttpRequest) -> HttpResponse:
    """The services and every consumer's lag read from Kafka now (dashboard.services_overview)."""
    overview = services_overview()
    return TemplateResponse(request, "ops/dashboard.html", _context(
        request, "Operations",
        checks=overview.checks, lags=overview.lags, lag_error=overview.lag_error, max_lag=overview.max_lag,
        kafka_up=overview.kafka_up, states=overview.states, quarantine=overview.quarantine,
        open_by_source=overview.open_by_source,
    ))


def dashboard_fragment(request: HttpRequest) -> HttpResponse:
    """The admin index's dashboard, alone: what its refresh loop fetches every few seconds."""
    return TemplateResponse(request, "ops/dashboard_fragment.html", {"overview": dashboard_overview()})


def pipeline_map(request: HttpRequest) -> HttpResponse:
    """Every pipeline in one live picture (topology.pipeline_map drawn by map_svg.map_svg);
    its refresh loop fetches `pipeline_map_fragment`."""
    return TemplateResponse(request, "ops/map.html", _context(
        request, "Pipeline map", svg=map_svg(topology.pipeline_map()), is_nav_sidebar_enabled=False,
        refresh_ms=int(settings.CONSOLE_DASHBOARD_REFRESH_SECONDS * 1000)))


def pipeline_map_fragment(request: HttpRequest) -> HttpResponse:
    return HttpResponse(map_svg(topology.pipeline_map()))


def trace_page(request: HttpRequest) -> HttpResponse:
    """Find an event by trace id or business key (`q`, `kind`) and show its path (trace.trace).
    A query it cannot search for says why on the page; a link whose page the operator may not
    open (the message browser needs console.view_topic_messages) is shown without its link."""
    text, kind = request.GET.get("q", "")[:1000], request.GET.get("kind", "auto")[:40]
    error, found = "", None
    try:
        query = trace.parse_query(text, kind)
    except trace.QueryError as exc:
        error, query = str(exc), None
    if query is not None:
        found = trace.trace(query)
    user, bounds = request.user, trace.Budget.start()
    hops = [{"hop": hop, "url": hop.url if not hop.perm or user.has_perm(hop.perm) else ""}
            for hop in (found.hops if found else [])]
    shown = "".join(c for c in text[:trace.MAX_QUERY] if c.isprintable())  # the box gets back what it can show
    return TemplateResponse(request, "ops/trace.html", _context(
        request, "Trace an event", q=shown, kind=kind if kind in trace.KINDS else "auto",
        kinds=list(trace.KINDS.items()), error=error, trace=found, hops=hops, is_nav_sidebar_enabled=False,
        bounds=bounds, scan_limit=f"{bounds.per_topic:,}"))


def consumer_detail(request: HttpRequest, name: str) -> HttpResponse:
    try:
        hours = min(max(float(request.GET.get("hours", 1)), 0.05), settings.CONSOLE_LAG_HISTORY_HOURS)
    except ValueError:
        hours = 1.0
    try:
        page = consumer_page(name=name, hours=hours)
    except KeyError as exc:
        raise Http404(f"no consumer {name!r} is registered") from exc
    lag_chart = lines_svg(page.partitions, since=page.since, until=page.until,
                          label=f"lag of {name} per partition over time")
    throughput_chart = lines_svg({"messages/s": page.throughput}, since=page.since, until=page.until,
                                 label=f"messages per second committed by {name}") if page.throughput else None
    dead_letter_chart = lines_svg({"dead letters/min": page.dead_letters_per_minute}, since=page.since,
                                  until=page.until, label=f"dead letters of {name} per minute") \
        if page.dead_letters_per_minute else None
    return TemplateResponse(request, "ops/consumer.html", _context(
        request, f"Consumer {name}", page=page, hours=hours, lag_chart=lag_chart,
        throughput_chart=throughput_chart, dead_letter_chart=dead_letter_chart, hour_choices=[0.25, 1.0, 6.0, 24.0],
        sample_seconds=settings.CONSOLE_LAG_SAMPLE_SECONDS,
    ))


def celery_page(request: HttpRequest) -> HttpResponse:
    """Workers online and queue lengths; answers within about two inspect timeouts
    when no worker runs, at once when the broker is down (celery_ops.celery_overview)."""
    overview = celery_ops.celery_overview()
    max_length = max([q.length for q in overview.queues] + [1])
    return TemplateResponse(request, "ops/celery.html", _context(
        request, "Celery workers and queues", overview=overview, max_length=max_length,
        may_revoke=request.user.has_perm(REVOKE_TASK),
    ))


def celery_revoke(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    task_id = request.POST.get("task_id", "").strip()[:255]
    next_url = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        next_url = ""
    if task_id:
        try:
            detail = celery_ops.task_revoke(task_id=task_id, by=request.user,
                                            queue=request.POST.get("queue", "").strip()[:255] or None,
                                            task_name=request.POST.get("task_name", "")[:255])
        except ActionError as exc:
            admin_messages.error(request, f"Not revoked: {exc.message}")
        else:
            where = "taken off its queue" if detail["removed_from_queue"] else "workers told to drop it"
            admin_messages.success(request, f"Task {task_id} revoked ({where}).")
    return HttpResponseRedirect(next_url or reverse("ops-celery"))


VIEW_OPERATIONS = "console.view_operations"
VIEW_TOPIC_MESSAGES = "console.view_topic_messages"
REVOKE_TASK = "console.revoke_task"
PRODUCE_MESSAGE = topic_pages.PRODUCE_MESSAGE
REDRIVE_DEAD_LETTERS = topic_pages.REDRIVE_DEAD_LETTERS


def _requires(*perms: str) -> Callable:
    """403 unless the (staff, logged-in: admin_view checks that first) user holds `perms`."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def guarded(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not request.user.has_perms(perms):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return guarded

    return decorate


def urls() -> list:
    wrap = admin.site.admin_view
    return [
        path("", wrap(_requires(VIEW_OPERATIONS)(dashboard)), name="ops-dashboard"),
        path("dashboard/", wrap(_requires(VIEW_OPERATIONS)(dashboard_fragment)), name="ops-dashboard-fragment"),
        path("map/", wrap(_requires(VIEW_OPERATIONS)(pipeline_map)), name="ops-map"),
        path("map/svg/", wrap(_requires(VIEW_OPERATIONS)(pipeline_map_fragment)), name="ops-map-fragment"),
        path("trace/", wrap(_requires(VIEW_OPERATIONS)(trace_page)), name="ops-trace"),
        path("consumers/<str:name>/", wrap(_requires(VIEW_OPERATIONS)(consumer_detail)), name="ops-consumer"),
        path("consumers/<str:name>/offsets/plan/", wrap(_requires(VIEW_OPERATIONS, RESET_OFFSETS)(offsets_plan)),
             name="ops-offsets-plan"),
        path("consumers/<str:name>/offsets/apply/", wrap(_requires(VIEW_OPERATIONS, RESET_OFFSETS)(offsets_apply)),
             name="ops-offsets-apply"),
        path("topics/", wrap(_requires(VIEW_OPERATIONS)(topic_pages.topics)), name="ops-topics"),
        path("topics/<str:name>/", wrap(_requires(VIEW_OPERATIONS, VIEW_TOPIC_MESSAGES)(
            topic_pages.topic_messages)), name="ops-topic-messages"),
        path("topics/<str:name>/<int:partition>/<int:offset>/", wrap(_requires(VIEW_OPERATIONS, VIEW_TOPIC_MESSAGES)(
            topic_pages.message_detail)), name="ops-message"),
        path("topics/<str:name>/redrive/", wrap(_requires(VIEW_OPERATIONS, VIEW_TOPIC_MESSAGES, REDRIVE_DEAD_LETTERS)(
            topic_pages.redrive)), name="ops-redrive"),
        path("produce/", wrap(_requires(VIEW_OPERATIONS, VIEW_TOPIC_MESSAGES, PRODUCE_MESSAGE)(
            topic_pages.produce)), name="ops-produce"),
        path("celery/", wrap(_requires(VIEW_OPERATIONS)(celery_page)), name="ops-celery"),
        path("celery/revoke/", wrap(_requires(VIEW_OPERATIONS, REVOKE_TASK)(celery_revoke)),
             name="ops-celery-revoke"),
    ]
