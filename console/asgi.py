"""ASGI entry point: the web process under gunicorn with uvicorn workers (gunicorn.conf.py).

Django serves every request, except the telemetry POSTs of machines, which the
streams API answers first on the event loop (streams/api/asgi.py)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
django_application = get_asgi_application()

from streams.api.asgi import TelemetryHotPath  # noqa: E402  (needs the apps loaded)

application = TelemetryHotPath(django_application)
