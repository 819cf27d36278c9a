"""PostgreSQL side of a load: COPY of a validated stream, the per-file statistics
computed in that pass, and the set-based overall statistics.

Called by: ingest.services (processing: COPY and per-file statistics;
aggregation: the overall statistics).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable

import psycopg2
from psycopg2.extras import execute_values
from django.db import connection

from .contract import Contract, PassStats, RowStream
from .models import RawSensorReading, SensorAggregate
from .statistics import MetricStats

READINGS = RawSensorReading._meta.db_table
AGGREGATES = SensorAggregate._meta.db_table
COPY_READ_SIZE = 1024 * 1024


class Prefetcher:
    """Runs the validator one block ahead in a thread, so that validating the
    next block overlaps with PostgreSQL inserting this one (psycopg2 releases
    the GIL while it sends COPY data). At most `depth` blocks wait in memory."""

    def __init__(self, stream: RowStream, depth: int = 2) -> None:
        self.stream = stream
        self.blocks: queue.Queue = queue.Queue(maxsize=depth)
        self.stopping = threading.Event()
        self.finished = False
        self.thread = threading.Thread(target=self._run, name="ingest-validate", daemon=True)
        self.thread.start()

    def _put(self, item: object) -> bool:
        while not self.stopping.is_set():
            try:
                self.blocks.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            while True:
                block = self.stream.read()
                if not self._put(block) or not block:
                    return
        except BaseException as exc:  # handed to the reading side, which raises it
            self._put(exc)

    def read(self, size: int = -1) -> bytes:
        if self.finished:
            return b""
        item = self.blocks.get()
        if isinstance(item, BaseException):
            self.finished = True
            raise item
        if not item:
            self.finished = True
        return item

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=30)


def copy_rows(*, stream: RowStream) -> int:
    """COPY the rows the stream yields into raw sensor data, in binary format
    (the stream carries the file id in every row)."""
    columns = ", ".join(connection.ops.quote_name(c) for c in stream.copy_columns)
    reader = Prefetcher(stream)
    try:
        with connection.cursor() as cursor:
            cursor.cursor.copy_expert(
                f"COPY {READINGS} ({columns}) FROM STDIN WITH (FORMAT binary)", reader, size=COPY_READ_SIZE
            )
            return cursor.cursor.rowcount
    finally:
        reader.close()


def _statistics_sql(contract: Contract, where: str) -> str:
    """One scan grouped by device computes every metric's statistics (an
    ordered-set aggregate per metric for the median); the 1 row per device is
    then unpivoted into one row per (device, metric)."""
    q = connection.ops.quote_name
    per_metric = ",\n".join(
        f"count({q(m)}) AS {m}_n, min({q(m)}) AS {m}_min, max({q(m)}) AS {m}_max, avg({q(m)}) AS {m}_avg, "
        f"stddev_samp({q(m)}) AS {m}_std, percentile_cont(0.5) WITHIN GROUP (ORDER BY {q(m)}) AS {m}_med"
        for m in contract.metrics
    )
    unpivot = ", ".join(
        f"('{m}', s.{m}_n, s.{m}_min, s.{m}_max, s.{m}_avg, s.{m}_std, s.{m}_med)" for m in contract.metrics
    )
    return f"""
        WITH s AS (SELECT r.device, {per_metric} FROM {READINGS} r {where} GROUP BY r.device)
        SELECT s.device, m.* FROM s
         CROSS JOIN LATERAL (VALUES {unpivot}) AS m(metric, n, min, max, mean, std, median)
    """


def aggregates_write_file(*, file_id: int, results: Iterable[MetricStats]) -> int:
    """Per-file statistics per (device, metric), as computed in the loading pass
    (ingest/statistics.py): one DELETE of the file's previous ones, one INSERT."""
    rows = [(file_id, r.device, r.metric, r.count, r.min, r.max, r.mean, r.std, r.median) for r in results]
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {AGGREGATES} WHERE file_id = %s", [file_id])
        if not rows:
            return 0
        execute_values(
            cursor.cursor,
            f"INSERT INTO {AGGREGATES} (file_id, device, metric, count, min, max, mean, std, median, updated_at) "
            "VALUES %s",
            rows, template="(%s, %s, %s, %s, %s, %s, %s, %s, %s, now())", page_size=max(len(rows), 1),
        )
        return len(rows)


def aggregates_refresh_overall(*, devices: Iterable[str] | None, contract: Contract) -> int:
    """Overall statistics (file is null) for the given devices (all if None).

    The caller holds the refresh lock (services.aggregates_refresh): two
    concurrent refreshes would both insert the same keys."""
    devices = None if devices is None else sorted(set(devices))
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL work_mem = '128MB'")
        where, params = ("", []) if devices is None else ("WHERE r.device = ANY(%s)", [devices])
        delete_where = "" if devices is None else "AND device = ANY(%s)"
        cursor.execute(f"DELETE FROM {AGGREGATES} WHERE file_id IS NULL {delete_where}", params)
        cursor.execute(
            f"""
            INSERT INTO {AGGREGATES} (file_id, device, metric, count, min, max, mean, std, median, updated_at)
            SELECT NULL, device, metric, n, min, max, mean, std, median, now()
              FROM ({_statistics_sql(contract, where)}) stats
            """,
            params,
        )
        return cursor.rowcount


class ProgressReporter:
    """Writes rows-read progress on its own short autocommit connection, so the
    admin sees it while the load's transaction is still open."""

    def __init__(self, file_id: int, table: str) -> None:
        self.file_id = file_id
        self.table = table
        self._conn = None
        self._last = 0.0

    def __call__(self, stats: PassStats) -> None:
        now = time.monotonic()
        if now - self._last < 0.5:
            return
        self._last = now
        try:
            if self._conn is None:
                params = dict(connection.get_connection_params())
                params["options"] = (params.get("options", "") + " -c lock_timeout=2000 -c statement_timeout=5000").strip()
                self._conn = psycopg2.connect(**params)
                self._conn.autocommit = True
            with self._conn.cursor() as cursor:
                cursor.execute(
                    f"UPDATE {self.table} SET rows_total = %s, rows_rejected = %s, error_count = %s, "
                    "bytes_done = %s, updated_at = now() WHERE id = %s",
                    [stats.rows_total, stats.rows_rejected, stats.error_count, stats.bytes_read, self.file_id],
                )
        except psycopg2.Error:
            self.close()  # progress is best effort; the load itself carries on

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg2.Error:
                pass
            self._conn = None
