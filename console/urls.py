from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from ingest.api import register_routes as register_ingest_routes
from quarantine.api import QuarantineRecordViewSet
from streams import api_streams
from streams.api import urls as streams_api_urls

from . import ops
from .health import healthz
from .metrics import metrics

router = DefaultRouter()
streams_api_urls.register(router)  # telemetry, products, reports (streams/api)
api_streams.register(router)  # order windows, processed orders, sensor/activity
register_ingest_routes(router)  # files, upload, raw readings, aggregates
router.register("quarantine/records", QuarantineRecordViewSet, basename="quarantine-record")

urlpatterns = [
    path("admin/ops/", include(ops.urls())),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/auth/", include("rest_framework.urls")),
    path("api/", include(streams_api_urls.urlpatterns)),  # token fast path of the telemetry POSTs
    path("api/", include(router.urls)),
]

admin.site.site_header = "Pipeline operations console"
admin.site.site_title = "Pipeline console"
admin.site.index_title = "Operations"
