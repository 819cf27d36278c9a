"""Routes of the streams API, registered on the console's DefaultRouter (/api/)."""

from __future__ import annotations

from rest_framework.routers import BaseRouter

from . import views
from .auth import connect_signals


def register(router: BaseRouter) -> None:
    router.register("metrics", views.MetricViewSet, basename="metric")
    router.register("workorders", views.WorkOrderViewSet, basename="workorder")
    router.register("products", views.ProductViewSet, basename="product")
    router.register("reports", views.CorrelationReportViewSet, basename="report")
    connect_signals()
