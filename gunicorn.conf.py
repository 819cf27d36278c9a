"""gunicorn settings for the console's web process (read automatically from the
repository root; command-line options such as --workers still win).

The web process is ASGI (`console.asgi:application`) on uvicorn workers
(uvloop + httptools): the event API waits a few milliseconds per request for
Kafka's acknowledgement, and on an event loop a waiting request costs no
thread. Django's own views run in its thread pool as usual. The WSGI entry
point (`console.wsgi:application`) still works with WEB_WORKER_CLASS=gthread;
bench/api.py compares the two (docs/api.md).

The counters each worker keeps for /metrics (prometheus_client, console/ops/metrics.py)
are in multiprocess mode: every worker writes its own file to
PROMETHEUS_MULTIPROC_DIR and a scrape of any worker adds up every file, so a
counter never goes back whichever worker answers, nor when a worker dies.
The directory is the environment's PROMETHEUS_MULTIPROC_DIR, or one per server
in the temporary directory; it is created and emptied when the server starts
(before any worker, and before any import of prometheus_client, which reads the
variable once), and the default one is removed when the server stops.
"""

import gc
import glob
import os
import shutil
import sys
import tempfile

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


_metrics_dir_made = ""  # the default PROMETHEUS_MULTIPROC_DIR, removed on exit


def on_starting(server):
    global _metrics_dir_made
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if not path:
        path = _metrics_dir_made = os.path.join(tempfile.gettempdir(), f"console-metrics-{os.getpid()}")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = path  # the workers inherit it
    os.makedirs(path, exist_ok=True)
    for stale in glob.glob(os.path.join(path, "*.db")):  # counts of an earlier server
        os.remove(stale)


def child_exit(server, worker):
    # Imported here, never at the top: the master must not import prometheus_client before
    # on_starting has set the directory (the workers it forks would inherit a module that
    # counts in memory).
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # its live gauges go; its counters stay counted


def on_exit(server):
    if _metrics_dir_made:
        shutil.rmtree(_metrics_dir_made, ignore_errors=True)
