"""gunicorn settings for the console's web process (read automatically from the
repository root; command-line options such as --workers still win).

Threads, not processes, serve concurrent requests: the event API waits a few
milliseconds per request for Kafka's acknowledgement, and a thread waiting on
that costs nothing while others run. A shorter GIL switch interval lets the
thread that receives the acknowledgement run sooner (measured in bench/api.py:
higher rate and less CPU per request under load; see docs/api.md).
"""

import os
import sys

worker_class = os.environ.get("WEB_WORKER_CLASS", "gthread")
threads = int(os.environ.get("WEB_THREADS", "16"))
backlog = int(os.environ.get("WEB_BACKLOG", "2048"))
_switch_interval = float(os.environ.get("WEB_GIL_SWITCH_INTERVAL", "0.0005"))


def post_fork(server, worker):
    if _switch_interval > 0:
        sys.setswitchinterval(_switch_interval)
