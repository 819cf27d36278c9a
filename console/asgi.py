"""ASGI entry point: the web process under gunicorn with uvicorn workers (gunicorn.conf.py).

Django serves every request, except the telemetry POSTs of machines, which the
telemetry pipeline answers first on the event loop (streams/telemetry/asgi.py). Outermost,
BodyLimit refuses a body over INGEST_MAX_UPLOAD_BYTES while it streams in
(console/uploads.py).

No persistent database connections here: Django advises against them under
ASGI (each request may run in another thread of the pool, and connections
pile up), so DB_CONN_MAX_AGE is 0 for this process whatever the environment
says; consumers and Celery workers keep theirs.
"""

import os
import warnings

from django.core.asgi import get_asgi_application

# WhiteNoise serves static files with a synchronous file iterator, which Django's
# ASGI handler consumes in a thread and warns about on every file; harmless for
# the admin's few static files, so not repeated in the logs.
warnings.filterwarnings("ignore", message="StreamingHttpResponse must consume synchronous iterators")

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
os.environ["DB_CONN_MAX_AGE"] = "0"
django_application = get_asgi_application()

from console.uploads import BodyLimit  # noqa: E402  (needs the apps loaded)
from streams.telemetry.asgi import TelemetryHotPath  # noqa: E402

application = BodyLimit(TelemetryHotPath(django_application))
