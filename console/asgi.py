"""ASGI entry point: the web process under gunicorn with uvicorn workers (gunicorn.conf.py).

Django serves every request, except the telemetry POSTs of machines, which the
streams API answers first on the event loop (streams/api/asgi.py)."""

import os
import warnings

from django.core.asgi import get_asgi_application

# WhiteNoise serves static files with a synchronous file iterator, which Django's
# ASGI handler consumes in a thread and warns about on every file; harmless for
# the admin's few static files, so not repeated in the logs.
warnings.filterwarnings("ignore", message="StreamingHttpResponse must consume synchronous iterators")

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
django_application = get_asgi_application()

from streams.api.asgi import TelemetryHotPath  # noqa: E402  (needs the apps loaded)

application = TelemetryHotPath(django_application)
