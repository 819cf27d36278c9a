"""The stream pipelines' API routes: `register(router)` puts each pipeline's viewsets on
the console's router (console/urls.py), in one style for every app.

The telemetry POSTs' ASGI hot path is mounted by console/asgi.py, in front of
these same routes.
"""

from __future__ import annotations

from rest_framework.routers import BaseRouter

from .activity import api as activity_api
from .orders import api as orders_api
from .products import api as products_api
from .report import api as report_api
from .telemetry import api as telemetry_api


def register_routes(router: BaseRouter) -> None:
    for api in (telemetry_api, products_api, report_api, orders_api, activity_api):
        api.register(router)
