"""The report's services: request (queue a build), build, create in-process, keep the beat schedule.

Callers: the report API and admin, the `build_report` command, the Celery
tasks (report/tasks.py), StreamsConfig.ready() (the schedule).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from streams.kafka.client import describe
from streams.kafka.registry import Source, register_source

from .inputs import report_inputs_load
from .method import METHOD, ReportParameters, correlate
from .models import CorrelationReport, CorrelationRow

logger = logging.getLogger(__name__)

BUILD_TASK = "streams.report_build"  # report/tasks.py

# Who asks for a report besides the beat entry (the pipeline map, console/ops/topology.py).
register_source(Source("api:reports", "endpoint", "POST /api/reports/ (and the admin)", pipeline="report",
                       writes=("streams.CorrelationReport",), queues=(BUILD_TASK,), link="/api/reports/"))


def report_request(*, trigger: str, by=None, time_from: int | None = None, time_to: int | None = None,
                   parameters: dict[str, Any] | None = None) -> CorrelationReport:
    """Create a pending report and queue its build once the row is committed."""
    params = ReportParameters.from_settings(**(parameters or {}))
    report = CorrelationReport.objects.create(
        trigger=trigger, requested_by=by if getattr(by, "is_authenticated", False) else None,
        method=METHOD, parameters=asdict(params), time_from=time_from, time_to=time_to,
    )
    transaction.on_commit(lambda: _queue_build(report.pk))
    return report


def _queue_build(report_id: int) -> None:
    """Queue the build; if the Celery broker is unreachable, the report says so
    instead of staying pending forever."""
    from celery import current_app  # by name: the tasks import this module, never the other way

    try:
        current_app.send_task(BUILD_TASK, args=[report_id])
    except Exception as exc:  # kombu raises a variety of connection errors
        logger.exception("report_queue_failed report=%s", report_id)
        CorrelationReport.objects.filter(pk=report_id).update(
            status=CorrelationReport.Status.FAILED, error=f"could not queue the build: {exc}"[:2000],
            finished_at=timezone.now(),
        )


def report_build(*, report_id: int) -> CorrelationReport:
    """Compute a report in place (pending -> running -> done/failed)."""
    report = CorrelationReport.objects.get(pk=report_id)
    if report.status == CorrelationReport.Status.DONE:
        return report  # a redelivered task must not compute twice
    report.status = CorrelationReport.Status.RUNNING
    report.save(update_fields=["status"])
    started = time.monotonic()
    try:
        params = ReportParameters.from_settings(**(report.parameters or {}))
        inputs = report_inputs_load(time_from=report.time_from, time_to=report.time_to)
        rows = correlate(inputs, params)
        with transaction.atomic():
            report.rows.all().delete()
            CorrelationRow.objects.bulk_create([CorrelationRow(report=report, **asdict(r)) for r in rows],
                                               batch_size=2000)
            report.method = METHOD
            report.parameters = asdict(params)
            report.input_time_min, report.input_time_max = inputs.time_range()
            report.metric_count = int(inputs.metric_time.size)
            report.workorder_count = int(inputs.workorder_time.size)
            report.input_digest = inputs.digest()
            report.status = CorrelationReport.Status.DONE
            report.error = ""
            report.duration_ms = int((time.monotonic() - started) * 1000)
            report.finished_at = timezone.now()
            report.save()
    except Exception as exc:
        logger.exception("report_build_failed report=%s", report_id)
        report.status = CorrelationReport.Status.FAILED
        report.error = describe(exc, limit=2000)
        report.duration_ms = int((time.monotonic() - started) * 1000)
        report.finished_at = timezone.now()
        report.save()
    logger.info("report_built report=%s status=%s ms=%s metrics=%s workorders=%s",
                report.pk, report.status, report.duration_ms, report.metric_count, report.workorder_count)
    return report


def report_create(*, trigger: str, by=None, time_from: int | None = None, time_to: int | None = None,
                  parameters: dict[str, Any] | None = None) -> CorrelationReport:
    """Create and compute a report in this process (the shell command)."""
    params = ReportParameters.from_settings(**(parameters or {}))
    report = CorrelationReport.objects.create(
        trigger=trigger, requested_by=by, method=METHOD, parameters=asdict(params),
        time_from=time_from, time_to=time_to,
    )
    return report_build(report_id=report.pk)


def report_schedule_ensure() -> str:
    """Create or update the django-celery-beat entry of the scheduled report (idempotent)."""
    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    name = "Correlation report (scheduled)"
    spec = settings.REPORT_SCHEDULE_CRONTAB.split()
    if not spec:
        deleted, _ = PeriodicTask.objects.filter(name=name).delete()
        return "removed" if deleted else "none"
    if len(spec) != 5:
        raise ValueError(f"REPORT_SCHEDULE_CRONTAB needs 5 fields, got {settings.REPORT_SCHEDULE_CRONTAB!r}")
    minute, hour, day_of_month, month_of_year, day_of_week = spec
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month_of_year,
        day_of_week=day_of_week, timezone="UTC",
    )
    task, created = PeriodicTask.objects.get_or_create(
        name=name, defaults={"task": "streams.report_scheduled", "crontab": crontab},
    )
    if created:
        return "created"
    if task.task != "streams.report_scheduled" or task.crontab_id != crontab.pk:
        # An operator's enabled/disabled choice is kept; only the schedule follows the setting.
        task.task, task.crontab, task.interval = "streams.report_scheduled", crontab, None
        task.save()
        return "updated"
    return "unchanged"
