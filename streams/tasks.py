"""Celery tasks of the streams app, imported for Celery's autodiscovery (`streams.tasks`).

Each pipeline keeps its tasks in its own package; only the report has any.
"""

from .report.tasks import report_build_task, report_scheduled_task

__all__ = ["report_build_task", "report_scheduled_task"]
