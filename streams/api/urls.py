"""Routes of the streams API (/api/): viewsets on the console's DefaultRouter, plus
the token fast path of the telemetry POSTs, which must come before the router."""

from __future__ import annotations

from django.urls import path
from rest_framework.routers import BaseRouter

from . import views
from .ingest import METRICS, WORKORDERS
from .auth import connect_signals
from .fast import telemetry_endpoint


def register(router: BaseRouter) -> None:
    router.register("metrics", views.MetricViewSet, basename="metric")
    router.register("workorders", views.WorkOrderViewSet, basename="workorder")
    router.register("products", views.ProductViewSet, basename="product")
    router.register("reports", views.CorrelationReportViewSet, basename="report")
    connect_signals()


_list_actions = {"get": "list", "post": "create"}

urlpatterns = [
    path("metrics/", telemetry_endpoint(METRICS, views.MetricViewSet.as_view(_list_actions)),
         name="metric-fast"),
    path("workorders/", telemetry_endpoint(WORKORDERS, views.WorkOrderViewSet.as_view(_list_actions)),
         name="workorder-fast"),
]
