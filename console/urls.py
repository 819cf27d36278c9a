"""The console's URLs: the admin, the operations pages, single sign-on, health, metrics, the API docs and
every app's API routes (each app's `register_routes(router)`)."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from ingest.api import register_routes as register_ingest_routes
from quarantine.api import register_routes as register_quarantine_routes
from streams.urls import register_routes as register_stream_routes

from .ops import pages as ops
from .ops.health import healthz
from .ops.metrics import metrics
from .tokens import connect_signals

router = DefaultRouter()
register_stream_routes(router)  # telemetry, products, reports, order windows, sensor/activity
register_ingest_routes(router)  # files, upload, raw readings, aggregates
register_quarantine_routes(router)  # quarantine records and their actions

urlpatterns = [
    path("admin/ops/", include(ops.urls())),
    path("admin/", admin.site.urls),
    path("oidc/", include("console.sso.urls")),  # single sign-on: 404 until configured (console/sso)
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/auth/", include("rest_framework.urls")),
    path("api/", include(router.urls)),
]

connect_signals()  # a deleted service token is forgotten at once

admin.site.site_header = "Pipeline operations console"
admin.site.site_title = "Pipeline console"
admin.site.index_title = "Operations"
