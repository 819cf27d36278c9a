"""Aggregation: the overall statistics per device over every loaded file,
refreshed after loads (coalesced: loads mark devices, one refresh runs at a
time). The per-file statistics are computed in the load itself (ingest/loading.py).

Called by: processing.py (marks devices), the `ingest.refresh_overall_aggregates` task.
"""

from __future__ import annotations

from django.db import connection, transaction

from ..contract import Contract
from ..loading import aggregates_refresh_overall
from ..models import OverallRefreshPending

REFRESH_TASK = "ingest.refresh_overall_aggregates"  # ingest/tasks.py


def refresh_overall_on_commit(devices: list[str]) -> None:
    """Mark the devices for the overall refresh (in the load's transaction) and
    queue a refresh once it commits; refreshes coalesce (aggregates_refresh)."""
    from celery import current_app  # by name: ingest.tasks imports the services, never the other way

    OverallRefreshPending.objects.bulk_create([OverallRefreshPending(device=d) for d in devices],
                                              ignore_conflicts=True)
    transaction.on_commit(lambda: current_app.send_task(REFRESH_TASK, ignore_result=True))


def aggregates_refresh(*, devices: list[str] | None = None) -> int:
    """Recompute the overall statistics of `devices`, or (None) of every device
    marked pending by loads since the last refresh. One refresh at a time;
    one that waited for another finds the devices marked meanwhile, and the
    refreshes queued behind it find none left and return at once. A failed
    refresh rolls back, so its devices stay marked."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            # One refresh at a time; the lock is the transaction's, released at its end.
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext('ingest.aggregates_overall'))")
            if devices is None:
                cursor.execute(f"DELETE FROM {OverallRefreshPending._meta.db_table} RETURNING device")
                devices = [row[0] for row in cursor.fetchall()]
                if not devices:
                    return 0
        return aggregates_refresh_overall(devices=devices, contract=Contract.from_settings())
