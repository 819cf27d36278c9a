"""The Celery application: Redis broker, settings from Django (CELERY_*)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")

app = Celery("console")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Every worker keeps the real arguments and queue of each task with its result,
# so a failed task can be retried from the admin (console/ops/celery_ops.py).
from console.celery_signals import connect_worker_signals  # noqa: E402

connect_worker_signals()
