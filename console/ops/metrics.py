"""`/metrics` for Prometheus: the pipelines' state, read at scrape time.

Every figure comes from where it already lives, or is added up over every web
worker, so any worker can answer a scrape and a counter never goes back:

* consumers, from their heartbeat rows (streams.kafka.heartbeat): messages,
  applied, dead-lettered and refused counters per process, heartbeat age,
  and whether each consumer is running or failing;
* lag per partition, from Kafka (the dashboard's own reader, bounded by its
  timeout; left out when the broker does not answer);
* files by status and rows loaded, from the ingest tables;
* open quarantine by source;
* the web process's producer deliveries and failures
  (`console_producer_deliveries_total`, streams.kafka.producer): a
  prometheus_client counter in multiprocess mode, each worker writing its
  counts to its own file in PROMETHEUS_MULTIPROC_DIR (gunicorn.conf.py creates
  and empties it at start) and a scrape summing every file, a dead worker's
  too; outside gunicorn (runserver, tests) the one process's own counter;
* the active alerts (console/ops/alerts.py), one series of 1 per alert and subject;
* Celery task results by task and state, from the results table
  (django-celery-results; one aggregate query): a worker is another process,
  so a counter kept there could not be read here;
* requests Django answered, by route, method and status: every web process
  counts in memory (RequestMetricsMiddleware) and adds its counts to one Redis
  hash at most once a second, so a scrape of any process sees them all.
  Requests answered before Django (the ASGI telemetry fast path, BodyLimit's
  413) are not counted.

Access: a scrape needs `Authorization: Bearer <METRICS_TOKEN>` when that is set,
otherwise it must come from an address in METRICS_ALLOWED_ADDRESSES (loopback
by default).
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Sum
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

logger = logging.getLogger(__name__)


class ConsoleCollector:
    """Collects on each scrape (prometheus_client's custom-collector protocol)."""

    def collect(self) -> Iterator[Metric]:
        yield from self._consumers()
        yield from self._lag()
        yield from self._files()
        yield from self._quarantine()
        yield from self._celery()
        yield from self._requests()
        yield from self._alerts()

    @staticmethod
    def _consumers() -> Iterator[Metric]:
        from streams.kafka.heartbeat import consumer_health
        from streams.kafka.registry import consumers
        from streams.models import ConsumerHeartbeat

        labels = ["consumer", "member"]
        families = {
            name: CounterMetricFamily(f"console_consumer_{name}", help_text, labels=labels)
            for name, help_text in (
                ("messages", "Messages a consumer process handled."),
                ("applied", "Messages a consumer process applied."),
                ("dead_lettered", "Messages a consumer process dead-lettered (quarantined)."),
                ("refused", "Messages the database refused (dead-lettered with its error)."),
            )
        }
        age = GaugeMetricFamily("console_consumer_heartbeat_age_seconds", "Seconds since the process's last heartbeat.",
                                labels=labels)
        batch = HistogramMetricFamily("console_consumer_batch_seconds",
                                      "Time to apply, publish and commit one batch, per consumer process.",
                                      labels=labels)
        now = timezone.now()
        for row in ConsumerHeartbeat.objects.filter(beat_at__gte=now - timedelta(days=1)):
            for name, family in families.items():
                family.add_metric([row.consumer, row.member], getattr(row, name))
            age.add_metric([row.consumer, row.member], (now - row.beat_at).total_seconds())
            if row.batch_buckets:
                buckets = sorted(((float(b), c) for b, c in row.batch_buckets.items()))
                batch.add_metric([row.consumer, row.member],
                                 [("+Inf" if b == float("inf") else repr(b), c) for b, c in buckets],
                                 sum_value=row.batch_seconds_sum)
        yield from families.values()
        yield age
        yield batch
        up = GaugeMetricFamily("console_consumer_running", "1 when a live process of the consumer is running.",
                               labels=["consumer"])
        failing = GaugeMetricFamily("console_consumer_failing",
                                    "1 when the consumer is waiting, paused, crashed or silent.", labels=["consumer"])
        for name, state in consumer_health(list(consumers())).items():
            up.add_metric([name], 1 if state["status"] == "running" else 0)
            failing.add_metric([name], 1 if state["status"] == "failing" else 0)
        yield up
        yield failing

    @staticmethod
    def _lag() -> Iterator[Metric]:
        from streams.kafka import cluster

        lag = GaugeMetricFamily("console_consumer_lag", "Messages behind the end of the partition.",
                                labels=["consumer", "topic", "partition"])
        try:
            groups = cluster.consumer_lag()
        except Exception as exc:  # the broker is away: no lag figures this scrape
            logger.warning("metrics_lag_unavailable error=%s", exc)
            groups = []
        for group in groups:
            for p in group.partitions:
                lag.add_metric([group.consumer, p["topic"], str(p["partition"])], p["lag"])
        yield lag

    @staticmethod
    def _files() -> Iterator[Metric]:
        from ingest.models import IngestedFile

        files = GaugeMetricFamily("console_ingest_files", "Registered files by status.", labels=["status"])
        counts = dict(IngestedFile.objects.values_list("status").order_by().annotate(n=Count("id")))
        for status in IngestedFile.Status.values:
            files.add_metric([status], counts.get(status, 0))
        yield files
        rows = IngestedFile.objects.aggregate(loaded=Sum("rows_loaded"), rejected=Sum("rows_rejected"))
        loaded = CounterMetricFamily("console_ingest_rows_loaded", "Rows loaded from files.")
        loaded.add_metric([], rows["loaded"] or 0)
        rejected = CounterMetricFamily("console_ingest_rows_rejected", "Rows rejected in files.")
        rejected.add_metric([], rows["rejected"] or 0)
        yield loaded
        yield rejected

    @staticmethod
    def _quarantine() -> Iterator[Metric]:
        from quarantine.models import QuarantineRecord

        family = GaugeMetricFamily("console_quarantine_open", "Open quarantine records by source.", labels=["source"])
        counts = dict(QuarantineRecord.objects.filter(status=QuarantineRecord.Status.OPEN)
                      .values_list("source").order_by().annotate(n=Count("id")))
        for source in QuarantineRecord.Source.values:
            family.add_metric([source], counts.get(source, 0))
        yield family

    @staticmethod
    def _celery() -> Iterator[Metric]:
        from django_celery_results.models import TaskResult

        family = GaugeMetricFamily(
            "console_celery_task_results",
            "Celery task results kept (CELERY_RESULT_RETENTION_DAYS) by task and state; tasks with "
            "ignore_result appear only when they fail.", labels=["task", "state"])
        for task, state, n in (TaskResult.objects.values_list("task_name", "status").order_by()
                               .annotate(n=Count("id")).values_list("task_name", "status", "n")):
            family.add_metric([task or "unknown", state], n)
        yield family

    @staticmethod
    def _requests() -> Iterator[Metric]:
        request_counts.flush(force=True)
        try:
            counts = request_counts.read()
        except Exception as exc:  # Redis is away: no request counts this scrape
            logger.warning("metrics_requests_unavailable error=%s", exc)
            return
        family = CounterMetricFamily("console_http_requests", "Requests Django answered, by route, method "
                                     "and status (all web processes).", labels=["route", "method", "status"])
        for (route, method, status), n in sorted(counts.items()):
            family.add_metric([route, method, status], n)
        yield family


    @staticmethod
    def _alerts() -> Iterator[Metric]:
        from .alerts import alerts_active

        family = GaugeMetricFamily("console_alert_active", "1 for each alert active now (console/ops/alerts.py): "
                                   "its name and subject (a consumer or a file).", labels=["alert", "subject"])
        for alert in alerts_active():
            family.add_metric([alert.name, alert.subject], 1)
        yield family


# ------------------------------------------------------- requests by route

_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


class RequestCounts:
    """Per-process counts, added to a Redis hash (HINCRBY, one pipeline) at most every
    `interval` seconds from a request's thread; after a failed flush the counts are
    kept and the next try waits `backoff` seconds, so a Redis outage costs requests
    nothing but one short timeout now and then. The labels are bounded (route names,
    seven methods, status codes), and so is the memory kept while Redis is away."""

    def __init__(self, interval: float = 1.0, backoff: float = 10.0) -> None:
        self.interval, self.backoff = interval, backoff
        self._counts: Counter[tuple[str, str, int]] = Counter()
        self._lock = threading.Lock()
        self._next_flush = 0.0
        self._client = None

    def key(self) -> str:
        from django.db import connection

        # One hash per database: a deployment's web processes share it, test runs do not.
        return f"console-metrics:{connection.settings_dict['NAME']}:http_requests"

    def client(self):
        if self._client is None:
            import redis

            self._client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=0.2,
                                                socket_connect_timeout=0.2)
        return self._client

    def add(self, route: str, method: str, status: int) -> None:
        with self._lock:
            self._counts[(route, method if method in _METHODS else "other", status)] += 1
            due = time.monotonic() >= self._next_flush
        if due:
            self.flush()

    def flush(self, *, force: bool = False) -> None:
        with self._lock:
            if not self._counts or (not force and time.monotonic() < self._next_flush):
                return
            pending, self._counts = self._counts, Counter()
            self._next_flush = time.monotonic() + self.interval
        try:
            pipe = self.client().pipeline(transaction=False)
            key = self.key()
            for (route, method, status), n in pending.items():
                pipe.hincrby(key, f"{route}|{method}|{status}", n)
            pipe.execute()
        except Exception as exc:  # keep the counts for the next try
            with self._lock:
                self._counts.update(pending)
                self._next_flush = time.monotonic() + self.backoff
            logger.warning("metrics_requests_flush_failed error=%s", exc)

    def read(self) -> dict[tuple[str, str, str], int]:
        out = {}
        for field, n in self.client().hgetall(self.key()).items():
            route, method, status = field.decode().rsplit("|", 2)
            out[(route, method, status)] = int(n)
        return out


request_counts = RequestCounts()


class RequestMetricsMiddleware:
    """Counts each response Django sends by the view's route name (`metric-list`,
    `admin:index`; the URL pattern for a route without a name; `unmatched` when no
    route matched: a 404, or a middleware's answer before resolving)."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        route = (match.view_name or match.route or "unnamed") if match else "unmatched"
        request_counts.add(route[:200], request.method or "", response.status_code)
        return response


def _registry_build() -> CollectorRegistry:
    """The collector above, and the counters each process keeps (prometheus_client metrics):
    every worker's, summed from their files, when PROMETHEUS_MULTIPROC_DIR is set."""
    from streams.kafka.producer import deliveries

    registry = CollectorRegistry(auto_describe=False)
    registry.register(ConsoleCollector())
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(deliveries)
    return registry


_registry = _registry_build()


def _allowed(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    if token:
        given = request.META.get("HTTP_AUTHORIZATION", "")
        return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())
    return request.META.get("REMOTE_ADDR", "") in settings.METRICS_ALLOWED_ADDRESSES


def metrics(request: HttpRequest) -> HttpResponse:
    if not _allowed(request):
        return HttpResponse("forbidden\n", status=403, content_type="text/plain")
    return HttpResponse(generate_latest(_registry), content_type=CONTENT_TYPE_LATEST)
