"""The operations dashboard inside the admin: services, consumer lag, topics
and recent messages (what operators otherwise open Kafdrop or kafka-ui for).

Staff only (the admin's login), and each page needs its permission on top:
`console.view_operations` for the dashboard and the topics, and
`console.view_topic_messages` for raw messages, which carry whatever the
producers put in them. The `operators` group has both.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path

from quarantine.models import QuarantineRecord
from streams.kafka import cluster

from .health import consumer_states, run_checks


def _context(request: HttpRequest, title: str, **extra) -> dict:
    return {**admin.site.each_context(request), "title": title, **extra}


def dashboard(request: HttpRequest) -> HttpResponse:
    checks = run_checks()
    kafka_up = checks["kafka"]["status"] == "up"
    lags = cluster.consumer_lag() if kafka_up else []
    max_lag = max([g.lag for g in lags] + [1])
    quarantine = {
        row["status"]: row["n"]
        for row in QuarantineRecord.objects.values("status").order_by().annotate(n=Count("id"))
    }
    open_by_source = dict(
        QuarantineRecord.objects.filter(status=QuarantineRecord.Status.OPEN)
        .values_list("source").order_by().annotate(n=Count("id"))
    )
    states = consumer_states() if checks["postgres"]["status"] == "up" else {}
    for group in lags:
        group.health = states.get(group.consumer, {})
    return TemplateResponse(request, "ops/dashboard.html", _context(
        request, "Operations",
        checks=checks, lags=lags, max_lag=max_lag, kafka_up=kafka_up, states=states,
        quarantine=quarantine, open_by_source=open_by_source,
    ))


def topics(request: HttpRequest) -> HttpResponse:
    infos = cluster.topics_overview(include_internal=request.GET.get("internal") == "1")
    max_messages = max([t.messages for t in infos] + [1])
    return TemplateResponse(request, "ops/topics.html", _context(
        request, "Kafka topics", topics=infos, max_messages=max_messages,
    ))


def topic_messages(request: HttpRequest, name: str) -> HttpResponse:
    try:
        limit = min(max(int(request.GET.get("limit", 50)), 1), 500)
        partition = int(request.GET["partition"]) if request.GET.get("partition", "") != "" else None
    except ValueError:
        limit, partition = 50, None
    try:
        messages = cluster.recent_messages(name, limit=limit, partition=partition)
    except LookupError as exc:
        raise Http404(str(exc)) from exc
    return TemplateResponse(request, "ops/messages.html", _context(
        request, f"Recent messages on {name}", topic=name, messages=messages, limit=limit, partition=partition,
    ))


VIEW_OPERATIONS = "console.view_operations"
VIEW_TOPIC_MESSAGES = "console.view_topic_messages"


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
        path("topics/", wrap(_requires(VIEW_OPERATIONS)(topics)), name="ops-topics"),
        path("topics/<str:name>/", wrap(_requires(VIEW_OPERATIONS, VIEW_TOPIC_MESSAGES)(topic_messages)),
             name="ops-topic-messages"),
    ]
