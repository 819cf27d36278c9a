"""Celery tasks of the report: thin wrappers around report/services.py.

The task names (`streams.report_build`, `streams.report_scheduled`) are what
beat rows and queued messages refer to: they never change.
"""

from __future__ import annotations

from celery import shared_task

from streams.kafka.registry import Source, register_source

from .models import CorrelationReport
from .services import report_build, report_request

# What each task does, for the pipeline map (console/ops/topology.py; key: the task's name).
register_source(Source("streams.report_build", "task", "report_build", pipeline="report",
                       writes=("streams.CorrelationReport", "streams.CorrelationRow")))
register_source(Source("streams.report_scheduled", "task", "report_scheduled (beat)", pipeline="report",
                       writes=("streams.CorrelationReport",), queues=("streams.report_build",)))


@shared_task(name="streams.report_build")
def report_build_task(report_id: int) -> dict:
    """Build one report. No retries: the service records any failure on the report
    itself (status "failed" with the error), where operators see it."""
    try:
        report = report_build(report_id=report_id)
    except CorrelationReport.DoesNotExist:
        return {"report": report_id, "status": "missing"}
    return {"report": report.pk, "status": report.status, "duration_ms": report.duration_ms}


@shared_task(name="streams.report_scheduled")
def report_scheduled_task() -> dict:
    """The django-celery-beat entry: request a report with the current settings."""
    report = report_request(trigger=CorrelationReport.Trigger.SCHEDULE)
    return {"report": report.pk}
