"""Reads of the file-ingestion pipeline (API and admin)."""

from __future__ import annotations

from django.db import connection
from django.db.models import QuerySet

from .models import IngestedFile, SensorAggregate, SensorReading


def file_list() -> QuerySet[IngestedFile]:
    return IngestedFile.objects.select_related("quarantine", "duplicate_of")


def reading_list(*, device: str | None = None, since=None, until=None, file_id: int | None = None
                 ) -> QuerySet[SensorReading]:
    qs = SensorReading.objects.all()
    if device:
        qs = qs.filter(device=device)
    if since is not None:
        qs = qs.filter(recorded_at__gte=since)
    if until is not None:
        qs = qs.filter(recorded_at__lt=until)
    if file_id is not None:
        qs = qs.filter(file_id=file_id)
    return qs


def aggregate_list(*, overall: bool | None = None) -> QuerySet[SensorAggregate]:
    qs = SensorAggregate.objects.select_related("file")
    if overall is True:
        qs = qs.filter(file__isnull=True)
    elif overall is False:
        qs = qs.filter(file__isnull=False)
    return qs


def known_devices() -> list[str]:
    """Devices that have data, from the (small) overall statistics table."""
    return sorted(set(SensorAggregate.objects.filter(file__isnull=True).values_list("device", flat=True)))


def estimated_rows(table: str) -> int:
    """PostgreSQL's planner estimate of a table's rows: no COUNT(*) scan."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [table])
        row = cursor.fetchone()
    return max(int(row[0]) if row else 0, 0)
