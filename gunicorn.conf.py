"""gunicorn settings for the console's web process (read automatically from the
repository root; command-line options such as --workers still win).

The web process is ASGI (`console.asgi:application`) on uvicorn workers
(uvloop + httptools): the event API waits a few milliseconds per request for
Kafka's acknowledgement, and on an event loop a waiting request costs no
thread. Django's own views run in its thread pool as usual. The WSGI entry
point (`console.wsgi:application`) still works with WEB_WORKER_CLASS=gthread;
bench/api.py compares the two (docs/api.md).
"""

import gc
import os
import sys

worker_class = os.environ.get("WEB_WORKER_CLASS", "uvicorn_worker.UvicornWorker")
threads = int(os.environ.get("WEB_THREADS", "16"))  # gthread only
backlog = int(os.environ.get("WEB_BACKLOG", "2048"))
# A shorter GIL switch interval lets the thread that receives Kafka's
# acknowledgements hand them over sooner (measured with gthread; docs/api.md).
_switch_interval = float(os.environ.get("WEB_GIL_SWITCH_INTERVAL", "0.0005"))


def post_fork(server, worker):
    if _switch_interval > 0:
        sys.setswitchinterval(_switch_interval)


def post_worker_init(worker):
    # The application is loaded: move its objects out of the collector's reach,
    # so that full collections under load scan only what requests allocate
    # (a full collection over all of Django's objects stalls every request in
    # the worker's event loop for tens of milliseconds).
    if os.environ.get("WEB_GC_FREEZE", "true").lower() not in ("0", "false", "no"):
        gc.freeze()
