"""What the operations dashboards show, read here once for every page that shows it:
the dashboard on the admin index (`dashboard_overview`, for the template tag and the
view its refresh loop fetches), /admin/ops/ (`services_overview`: the services' checks
and Kafka's live lag) and a consumer's page (`consumer_page`). The views
(console/ops/pages.py) only render what these return.

Selectors only. Pipelines and their consumers come from the consumer registry
(streams.kafka.registry.pipelines); a consumer registered without a pipeline is
listed under "Other consumers". Per pipeline: its consumers (state from their
heartbeats, lag and throughput from the lag history, processed and dead-lettered
counts from the heartbeat counters), each consumer's members (console/ops/members.py:
instance id, host:pid, partitions, lag from the newest sample, gone or live) and the
partitions no live member owns, open quarantine, and for the report the newest run;
then Celery's queues and failed tasks, and the active alerts (console/ops/alerts.py).

The admin index's overview is bounded: about ten aggregate queries whatever the
number of rows, one Redis round trip (LLEN of the queues,
CELERY_INSPECT_TIMEOUT_SECONDS) and one Kafka metadata request
(CONSOLE_DASHBOARD_KAFKA_TIMEOUT_SECONDS). Its lag is read from the newest sample
(`console.sample_lag`), not from Kafka, so a page polled every few seconds costs the
broker nothing and still shows lag while Kafka is down; /admin/ops/ is the page that
asks Kafka (streams.kafka.cluster.consumer_lag) for the lag of now.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count
from django.db.models.functions import TruncMinute
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.safestring import SafeString

from streams.kafka.client import describe
from streams.kafka.heartbeat import member_is_live
from streams.kafka.registry import Pipeline

from .alerts import Alert, alerts_active, history_window_start, lag_fresh_seconds
from .lag_history import LagPoint, LagSeries, lag_series, newest_partition_lags, sparkline_svg
from .members import GroupMembers, Partition, group_members

logger = logging.getLogger(__name__)


# Where the consumers registered without a pipeline are listed.
OTHER = Pipeline("other", "Other consumers", "admin:streams_consumerheartbeat_changelist")


@dataclass
class ConsumerRow:
    name: str
    status: str
    reason: str = ""
    last_error: str = ""
    live_members: int = 0
    rate: float | None = None  # messages per second committed, between the last two samples
    lag: int | None = None
    lag_at: datetime | None = None
    last_message_at: datetime | None = None
    processed: int = 0
    failed: int = 0
    open_quarantine: int = 0
    sparkline: SafeString | None = None
    alerts: list[Alert] = field(default_factory=list)
    members: GroupMembers = field(default_factory=GroupMembers)

    @property
    def red(self) -> bool:
        return bool(self.alerts) or self.status in ("failing", "stopped")


@dataclass
class PipelineRow:
    pipeline: Pipeline
    consumers: list[ConsumerRow]
    open_quarantine: int = 0
    alerts: list[Alert] = field(default_factory=list)
    report: Any = None

    @property
    def red(self) -> bool:
        return bool(self.alerts) or any(c.red for c in self.consumers)


@dataclass
class Overview:
    at: datetime
    kafka_up: bool
    kafka_error: str
    broker_up: bool
    broker_error: str
    pipelines: list[PipelineRow]
    alerts: list[Alert]
    open_by_source: dict[str, int]
    queues: list[Any]
    failed_tasks: int
    lag_sampled_at: datetime | None
    lag_stale: bool
    sparkline_minutes: int = 60

    @property
    def queued(self) -> int:
        return sum(q.length for q in self.queues)


def _kafka_status() -> tuple[bool, str]:
    from .health import check_kafka

    try:
        check_kafka(settings.CONSOLE_DASHBOARD_KAFKA_TIMEOUT_SECONDS)
        return True, ""
    except Exception as exc:  # down or not answering within the timeout: say so, render the rest
        return False, describe(exc, limit=300)


def _celery_queues() -> tuple[bool, str, list[Any]]:
    from . import celery_ops

    try:
        return True, "", celery_ops.queue_states(celery_ops.known_queues(), peek=0)
    except Exception as exc:  # Redis away
        return False, describe(exc, limit=300), []


def _members(entries: list[dict[str, Any]], newest: LagPoint | None, sampled: dict[Partition, int] | None,
             now: datetime) -> GroupMembers:
    """A consumer's members, their lag from its newest lag sample (`sampled`, per partition) when
    that sample is fresh, and the partitions it names (any age) for those no live member owns."""
    fresh = newest is not None and newest.at >= now - timedelta(seconds=lag_fresh_seconds())
    return group_members(entries, lags=sampled if fresh else None, partitions=sampled or ())


def _consumer_row(name: str, health: dict[str, Any], series: LagSeries | None, now: datetime,
                  since_sparkline: datetime, open_quarantine: int, alerts: list[Alert],
                  sampled: dict[Partition, int] | None) -> ConsumerRow:
    members = health.get("members", [])
    batches = [parse_datetime(m["last_batch_at"]) for m in members if m.get("last_batch_at")]
    errors = [m["last_error"] for m in members if m.get("last_error")]
    row = ConsumerRow(
        name=name, status=str(health.get("status", "not started")), reason=str(health.get("reason", "")),
        last_error=errors[0] if errors else "",
        live_members=sum(1 for m in members if member_is_live(m)),
        last_message_at=max(batches) if batches else None,
        processed=sum(m.get("messages", 0) for m in members),
        failed=sum(m.get("dead_lettered", 0) for m in members),
        open_quarantine=open_quarantine, alerts=[a for a in alerts if a.subject == name],
    )
    if series and series.newest:
        if series.newest.at >= now - timedelta(seconds=lag_fresh_seconds()):
            row.lag, row.lag_at = series.newest.lag, series.newest.at
        row.rate = series.rate()
    values = [p.lag for p in series.points if p.at >= since_sparkline] if series else []
    row.sparkline = sparkline_svg(values, alert=bool(row.alerts))
    row.members = _members(members, series.newest if series else None, sampled, now)
    return row


def open_quarantine() -> tuple[dict[str, int], dict[str, int]]:
    """The open quarantine records by source and by consumer, in one aggregate query."""
    from quarantine.models import QuarantineRecord

    open_rows = (QuarantineRecord.objects.filter(status=QuarantineRecord.Status.OPEN)
                 .values_list("source", "consumer").order_by().annotate(n=Count("id")))
    by_source: dict[str, int] = {}
    by_consumer: dict[str, int] = {}
    for source, consumer, n in open_rows:
        by_source[source] = by_source.get(source, 0) + n
        if consumer:
            by_consumer[consumer] = by_consumer.get(consumer, 0) + n
    return by_source, by_consumer


def pipelines_shown() -> dict[Pipeline, tuple[str, ...]]:
    """Each pipeline with its consumers, as the registry declares them, and OTHER with the
    consumers registered without a pipeline (when there is one)."""
    from streams.kafka.registry import consumers, pipelines

    shown = pipelines()
    placed = {name for names in shown.values() for name in names}
    others = tuple(name for name in consumers() if name not in placed)
    return {**shown, OTHER: others} if others else shown


def dashboard_overview(*, now: datetime | None = None) -> Overview:
    from django_celery_results.models import TaskResult

    from quarantine.models import QuarantineRecord
    from streams.kafka.heartbeat import consumer_health
    from streams.report.models import CorrelationReport

    now = now or timezone.now()
    pipelines = pipelines_shown()
    health = consumer_health(sorted(name for names in pipelines.values() for name in names))
    series = lag_series(since=history_window_start(now))
    sampled = newest_partition_lags(at={name: s.newest.at for name, s in series.items() if s.newest})
    alerts = alerts_active(now=now, health=health, series=series)
    open_by_source, open_by_consumer = open_quarantine()

    since_sparkline = now - timedelta(minutes=settings.CONSOLE_SPARKLINE_MINUTES)
    rows: list[PipelineRow] = []
    for pipeline, names in pipelines.items():
        consumer_rows = [
            _consumer_row(name, health[name], series.get(name), now, since_sparkline,
                          open_by_consumer.get(name, 0), alerts, sampled.get(name))
            for name in names
        ]
        row = PipelineRow(pipeline=pipeline, consumers=consumer_rows,
                          open_quarantine=sum(c.open_quarantine for c in consumer_rows))
        if pipeline.key == "files":
            row.open_quarantine += open_by_source.get(QuarantineRecord.Source.FILE, 0)
            row.alerts = [a for a in alerts if a.name == "file_stuck"]
        if pipeline.key == "report":
            row.report = CorrelationReport.objects.order_by("-created_at", "-id").first()
        rows.append(row)

    kafka_up, kafka_error = _kafka_status()
    broker_up, broker_error, queues = _celery_queues()
    failed_tasks = TaskResult.objects.filter(status="FAILURE", date_done__gte=now - timedelta(days=1)).count()
    newest = max((s.newest.at for s in series.values() if s.newest), default=None)
    return Overview(
        at=now, kafka_up=kafka_up, kafka_error=kafka_error, broker_up=broker_up, broker_error=broker_error,
        pipelines=rows, alerts=alerts, open_by_source=open_by_source, queues=queues, failed_tasks=failed_tasks,
        lag_sampled_at=newest,
        lag_stale=newest is None or newest < now - timedelta(seconds=lag_fresh_seconds()),
        sparkline_minutes=settings.CONSOLE_SPARKLINE_MINUTES,
    )


# ------------------------------------------------- /admin/ops/: services and live lag


@dataclass
class ServicesOverview:
    checks: dict[str, dict[str, object]]  # health.run_checks: PostgreSQL, Redis, Kafka
    lags: list[Any]  # streams.kafka.cluster.GroupLag, each with its `health` and `member_view`
    lag_error: str  # why the lag could not be read while Kafka's check passed
    states: dict[str, dict[str, Any]]  # consumer_health, empty while PostgreSQL is down
    quarantine: dict[str, int]  # records by status
    open_by_source: dict[str, int]

    @property
    def kafka_up(self) -> bool:
        return self.checks["kafka"]["status"] == "up"

    @property
    def max_lag(self) -> int:
        return max([g.lag for g in self.lags] + [1])


def services_overview() -> ServicesOverview:
    """The services' checks, every registered consumer's lag read from Kafka now (with its
    members: their partitions' live lag) and quarantine's counts."""
    from confluent_kafka import KafkaException

    from quarantine.models import QuarantineRecord
    from streams.kafka import cluster
    from streams.kafka.client import failure_reason

    from .health import consumer_states, run_checks

    checks = run_checks()
    lags, lag_error = [], ""
    if checks["kafka"]["status"] == "up":
        try:
            lags = cluster.consumer_lag()
        except KafkaException as exc:  # the broker went away after its check: say so, render the rest
            lag_error = failure_reason(exc)
    states = consumer_states() if checks["postgres"]["status"] == "up" else {}
    for group in lags:
        group.health = states.get(group.consumer, {})
        group.member_view = group_members(group.health.get("members", []), lags=group.lag_by_partition,
                                          partitions=group.every_partition)
    quarantine = dict(QuarantineRecord.objects.values_list("status").order_by().annotate(n=Count("id")))
    open_by_source, _by_consumer = open_quarantine()
    return ServicesOverview(checks=checks, lags=lags, lag_error=lag_error, states=states, quarantine=quarantine,
                            open_by_source=open_by_source)


# ------------------------------------------------------------ a consumer's page


@dataclass
class ConsumerPage:
    name: str
    spec: Any
    health: dict[str, Any]
    since: datetime
    until: datetime
    partitions: dict[str, list[tuple[datetime, int]]]
    throughput: list[tuple[datetime, float]]
    heartbeats: list[Any]
    errors: list[Any]
    dead_letters: list[Any]
    alerts: list[Alert]
    dead_letters_per_minute: list[tuple[datetime, float]] = field(default_factory=list)
    members: GroupMembers = field(default_factory=GroupMembers)

    @property
    def dead_letters_last_minute(self) -> int:
        return int(self.dead_letters_per_minute[-1][1]) if self.dead_letters_per_minute else 0


def consumer_page(*, name: str, hours: float, now: datetime | None = None) -> ConsumerPage:
    """One consumer: lag per partition and throughput since `hours` ago, its processes
    (the newest 50 heartbeats, as members: console/ops/members.py), its last errors and dead
    letters. KeyError: unknown."""
    from quarantine.models import QuarantineRecord
    from streams.kafka.heartbeat import batch_quantile, consumer_health, member_entry
    from streams.kafka.models import ConsumerHeartbeat
    from streams.kafka.registry import consumers

    from .lag_history import partition_series

    registered = consumers()
    spec = registered[name]
    now = now or timezone.now()
    since = now - timedelta(hours=hours)
    health = consumer_health([name]).get(name, {"status": "not started", "members": []})
    series = lag_series(since=since, consumers=[name]).get(name)
    throughput: list[tuple[datetime, float]] = []
    if series:
        for a, b in zip(series.points, series.points[1:]):
            seconds = (b.at - a.at).total_seconds()
            if seconds > 0:
                throughput.append((b.at, max(b.position - a.position, 0) / seconds))
    heartbeats = list(ConsumerHeartbeat.objects.filter(consumer=name).order_by("-beat_at")[:50])
    for h in heartbeats:  # batch latency from each process's histogram (bucket upper bounds)
        h.batch_p50 = batch_quantile(h.batch_buckets or {}, 0.5)
        h.batch_p99 = batch_quantile(h.batch_buckets or {}, 0.99)
    newest = series.newest if series else None
    sampled = newest_partition_lags(at={name: newest.at}).get(name) if newest else None
    members = _members([member_entry(h, now=now) for h in heartbeats], newest, sampled, now)
    by_member = {h.member: h for h in heartbeats}
    for row in members.shown + members.collapsed:
        row.heartbeat = by_member[row.member]
    errors = list(ConsumerHeartbeat.objects.filter(consumer=name).exclude(last_error="")
                  .order_by("-last_error_at")[:10])
    dead_letters = list(QuarantineRecord.objects.filter(consumer=name).order_by("-created_at")
                        .only("pk", "created_at", "reason", "status", "topic", "partition", "offset")[:10])
    alerts = [a for a in alerts_active(now=now) if a.subject == name]
    per_minute = dict(QuarantineRecord.objects.filter(consumer=name, created_at__gte=since)
                      .annotate(minute=TruncMinute("created_at")).values("minute").order_by()
                      .annotate(n=Count("id")).values_list("minute", "n"))
    first = since.replace(second=0, microsecond=0)
    minutes = [first + timedelta(minutes=i) for i in range(int((now - first).total_seconds() // 60) + 1)]
    dead_letter_rate = [(m, float(per_minute.get(m, 0))) for m in minutes] if per_minute else []
    return ConsumerPage(name=name, spec=spec, health=health, since=since, until=now,
                        partitions=partition_series(consumer=name, since=since), throughput=throughput,
                        heartbeats=heartbeats, errors=errors, dead_letters=dead_letters, alerts=alerts,
                        dead_letters_per_minute=dead_letter_rate, members=members)
