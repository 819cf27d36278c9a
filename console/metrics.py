"""`/metrics` for Prometheus: the pipelines' state, read at scrape time.

Every figure comes from where it already lives, so nothing is kept per process
and any web worker can answer a scrape:

* consumers, from their heartbeat rows (streams.kafka.heartbeat): messages,
  applied, dead-lettered and refused counters per process, heartbeat age,
  and whether each consumer is running or failing;
* lag per partition, from Kafka (the dashboard's own reader, bounded by its
  timeout; left out when the broker does not answer);
* files by status and rows loaded, from the ingest tables;
* open quarantine by source;
* this process's producer deliveries and failures.

Access: a scrape needs `Authorization: Bearer <METRICS_TOKEN>` when that is set,
otherwise it must come from an address in METRICS_ALLOWED_ADDRESSES (loopback
by default). Imports: the apps' models and the Kafka platform's readers.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterator
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Sum
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

logger = logging.getLogger(__name__)


class ConsoleCollector:
    """Collects on each scrape (prometheus_client's custom-collector protocol)."""

    def collect(self) -> Iterator[Metric]:
        yield from self._consumers()
        yield from self._lag()
        yield from self._files()
        yield from self._quarantine()
        yield from self._producer()

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
        now = timezone.now()
        for row in ConsumerHeartbeat.objects.filter(beat_at__gte=now - timedelta(days=1)):
            for name, family in families.items():
                family.add_metric([row.consumer, row.member], getattr(row, name))
            age.add_metric([row.consumer, row.member], (now - row.beat_at).total_seconds())
        yield from families.values()
        yield age
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
    def _producer() -> Iterator[Metric]:
        from streams.kafka.producer import stats

        family = CounterMetricFamily("console_producer_deliveries", "Deliveries of this process's producer.",
                                     labels=["outcome"])
        family.add_metric(["delivered"], stats.delivered)
        family.add_metric(["failed"], stats.failed)
        yield family


_registry = CollectorRegistry(auto_describe=False)
_registry.register(ConsoleCollector())


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
