"""Reads of the file-ingestion pipeline (API and admin).

Called by: ingest's API and admin.
"""

from __future__ import annotations

from django.conf import settings
from django.db import connection
from django.db.models import QuerySet

from .models import IngestedFile, RawSensorReading, SensorAggregate


def file_list() -> QuerySet[IngestedFile]:
    return IngestedFile.objects.select_related("quarantine", "duplicate_of")


def reading_last_id() -> int:
    """The newest id handed out to raw rows: the identity sequence's last value
    (no scan; ids still cached by a loading session may make it a little ahead)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_sequence_last_value(pg_get_serial_sequence(%s, 'id')::regclass)",
                       [RawSensorReading._meta.db_table])
        row = cursor.fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def reading_page(qs: QuerySet[RawSensorReading], *, limit: int, offset: int = 0, before: int | None = None,
                 after: int | None = None) -> list[RawSensorReading]:
    """Rows of `qs` newest first (by id): `offset` and `limit` after skipping ids
    >= `before`; or, with `after`, the `limit` oldest rows with ids > `after`
    (still returned newest first: the page before a keyset cursor).

    The raw table has no B-tree (migration 0003), so no `ORDER BY id LIMIT`
    can stop early by itself. Instead this reads id windows, each a range the
    BRIN on id narrows to a few block ranges, starting at the newest id and
    growing fourfold while they come back short (a selective filter), until
    the page is full or the ids run out."""
    wanted = offset + limit
    window = settings.INGEST_READINGS_WINDOW
    out: list[RawSensorReading] = []
    if after is None:
        top = reading_last_id() if before is None else before - 1
        while top >= 1 and len(out) < wanted:
            low = max(top - window + 1, 1)
            out += qs.filter(id__gte=low, id__lte=top).order_by("-id")[: wanted - len(out)]
            top, window = low - 1, window * 4
        return out[offset:]
    last = reading_last_id()
    low = after + 1
    while low <= last and len(out) < limit:
        top = min(low + window - 1, last)
        out += qs.filter(id__gte=low, id__lte=top).order_by("id")[: limit - len(out)]
        low, window = top + 1, window * 4
    return out[::-1]


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


def known_metrics() -> list[str]:
    """Metrics with statistics, from the same overall rows."""
    return sorted(set(SensorAggregate.objects.filter(file__isnull=True).values_list("metric", flat=True)))
