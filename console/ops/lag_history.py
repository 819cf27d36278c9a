"""Consumer lag over time: sampled into console.LagSample, read for sparklines, charts,
throughput and the lag alerts.

`lag_sample_take` is what the `console.sample_lag` beat task runs every
CONSOLE_LAG_SAMPLE_SECONDS: one reading of every registered consumer group's lag
per partition (streams.kafka.cluster.consumer_lag), written in one INSERT, and the
retention (CONSOLE_LAG_HISTORY_HOURS) applied in one DELETE. The readers are
aggregate queries bounded by a time window; nothing here is per row.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q, Sum
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from ..models import LagSample

logger = logging.getLogger(__name__)

SCHEDULE_NAME = "Consumer lag sampling"
TASK_NAME = "console.sample_lag"


# ------------------------------------------------------------------- services


@dataclass
class SampleResult:
    at: datetime
    written: int
    pruned: int


def lag_sample_take(*, now: datetime | None = None) -> SampleResult:
    """Read every consumer group's lag from Kafka once and keep it; prune the history.

    Kafka down: consumer_lag raises within its timeouts, nothing is written, the
    pruning still runs (the history stays bounded) and the error propagates."""
    from streams.kafka import cluster

    now = now or timezone.now()
    pruned = lag_history_prune(now=now)
    groups = cluster.consumer_lag()
    rows = [
        LagSample(at=now, consumer=group.consumer, group=group.group, topic=p["topic"], partition=p["partition"],
                  lag=p["lag"], end_offset=p["end"], committed=p["committed"])
        for group in groups for p in group.partitions
    ]
    LagSample.objects.bulk_create(rows, batch_size=1000)
    logger.info("lag_sampled partitions=%s pruned=%s", len(rows), pruned)
    return SampleResult(at=now, written=len(rows), pruned=pruned)


def lag_history_prune(*, now: datetime | None = None) -> int:
    """Delete the samples older than CONSOLE_LAG_HISTORY_HOURS (one DELETE: no signals, no cascade)."""
    cutoff = (now or timezone.now()) - timedelta(hours=settings.CONSOLE_LAG_HISTORY_HOURS)
    deleted, _ = LagSample.objects.filter(at__lt=cutoff).delete()
    return deleted


def lag_schedule_ensure() -> str:
    """Create or update the beat entry of `console.sample_lag` from CONSOLE_LAG_SAMPLE_SECONDS
    (idempotent, after every migrate; 0 removes it). An operator's enabled flag is kept."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    seconds = settings.CONSOLE_LAG_SAMPLE_SECONDS
    if seconds <= 0:
        deleted, _ = PeriodicTask.objects.filter(name=SCHEDULE_NAME).delete()
        return "removed" if deleted else "none"
    interval, _ = IntervalSchedule.objects.get_or_create(every=seconds, period=IntervalSchedule.SECONDS)
    task, created = PeriodicTask.objects.get_or_create(
        name=SCHEDULE_NAME, defaults={"task": TASK_NAME, "interval": interval,
                                      "description": "Samples consumer lag per partition for the dashboard "
                                                     "(CONSOLE_LAG_SAMPLE_SECONDS) and prunes the history."},
    )
    if created:
        return "created"
    if task.task != TASK_NAME or task.interval_id != interval.pk or task.crontab_id is not None:
        task.task, task.interval, task.crontab = TASK_NAME, interval, None
        task.save()
        return "updated"
    return "unchanged"


# ------------------------------------------------------------------ selectors


@dataclass
class LagPoint:
    at: datetime
    lag: int
    committed: int | None
    end_offset: int

    @property
    def position(self) -> int:
        """Where the group is (end minus lag): the committed offsets, or the start of a
        partition it never committed on, so throughput needs no commit to begin with."""
        return self.end_offset - self.lag


@dataclass
class LagSeries:
    """One consumer's total lag (all its partitions) at each sampling, oldest first."""

    consumer: str
    points: list[LagPoint] = field(default_factory=list)

    @property
    def newest(self) -> LagPoint | None:
        return self.points[-1] if self.points else None

    def rate(self) -> float | None:
        """Messages per second the group committed between its last two samples."""
        if len(self.points) < 2:
            return None
        a, b = self.points[-2], self.points[-1]
        seconds = (b.at - a.at).total_seconds()
        if seconds <= 0:
            return None
        return max(b.position - a.position, 0) / seconds  # 0, not negative, after an offset reset


def lag_series(*, since: datetime, consumers: list[str] | None = None) -> dict[str, LagSeries]:
    """Total lag per consumer and sampling since `since`: one GROUP BY over the window."""
    rows = LagSample.objects.filter(at__gte=since)
    if consumers is not None:
        rows = rows.filter(consumer__in=consumers)
    result: dict[str, LagSeries] = {}
    for row in (rows.values("consumer", "at").order_by("consumer", "at")
                .annotate(lag=Sum("lag"), committed=Sum("committed"), end=Sum("end_offset"))):
        series = result.setdefault(row["consumer"], LagSeries(row["consumer"]))
        series.points.append(LagPoint(at=row["at"], lag=row["lag"], committed=row["committed"],
                                      end_offset=row["end"]))
    return result


def newest_partition_lags(*, at: dict[str, datetime]) -> dict[str, dict[tuple[str, int], int]]:
    """Lag per (topic, partition) of each consumer in its sampling at `at[consumer]` (its
    newest, from `lag_series`): one query, whatever the number of consumers."""
    if not at:
        return {}
    wanted = Q()
    for consumer, when in at.items():
        wanted |= Q(consumer=consumer, at=when)
    out: dict[str, dict[tuple[str, int], int]] = {}
    for consumer, topic, partition, lag in (LagSample.objects.filter(wanted)
                                            .values_list("consumer", "topic", "partition", "lag")):
        out.setdefault(consumer, {})[(topic, partition)] = lag
    return out


def partition_series(*, consumer: str, since: datetime) -> dict[str, list[tuple[datetime, int]]]:
    """Lag per "topic[partition]" of one consumer since `since`, oldest first."""
    out: dict[str, list[tuple[datetime, int]]] = {}
    for at, topic, partition, lag in (LagSample.objects.filter(consumer=consumer, at__gte=since)
                                      .order_by("at").values_list("at", "topic", "partition", "lag")):
        out.setdefault(f"{topic}[{partition}]", []).append((at, lag))
    return out


# --------------------------------------------------------------------- charts

_COLORS = ["#417690", "#bf8700", "#8250df", "#1a7f37", "#cf222e", "#0969da", "#9a6700", "#6e7781"]


def sparkline_svg(values: list[int], *, width: int = 160, height: int = 28, alert: bool = False) -> SafeString:
    """A small line of the values (lag over time), scaled to its own maximum."""
    if len(values) < 2:
        return mark_safe(f'<svg class="ops-spark" width="{width}" height="{height}" role="img" '
                         f'aria-label="no lag history yet"><text x="2" y="{height - 8}" '
                         f'style="font:10px sans-serif" fill="#888">no history yet</text></svg>')
    top = max(max(values), 1)
    step = width / (len(values) - 1)
    points = " ".join(f"{i * step:.1f},{height - 2 - (v / top) * (height - 4):.1f}" for i, v in enumerate(values))
    color = "#cf222e" if alert else "#417690"
    return mark_safe(
        f'<svg class="ops-spark" width="{width}" height="{height}" role="img" '
        f'aria-label="lag over time, newest {int(values[-1])}, highest {int(top)}">'
        f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{points}"/>'
        f'<title>lag: newest {int(values[-1])}, highest {int(top)}</title></svg>'
    )  # every interpolated value is a number we formatted


def lines_svg(series: dict[str, list[tuple[datetime, float]]], *, since: datetime, until: datetime,
              label: str, width: int = 720, height: int = 220) -> SafeString:
    """A line per series over [since, until] with a y axis from 0 to the highest value and a legend."""
    left, bottom, legend_h = 60, 20, 16 * ((len(series) + 3) // 4)
    plot_w, plot_h = width - left - 10, height - bottom - 10
    top = max([v for points in series.values() for _, v in points] + [1])
    span = max((until - since).total_seconds(), 1)
    total_h = height + legend_h
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{total_h}" role="img" '
        f'aria-label="{escape(label)}" style="font:11px sans-serif">',
        f'<line x1="{left}" y1="10" x2="{left}" y2="{10 + plot_h}" stroke="#888"/>',
        f'<line x1="{left}" y1="{10 + plot_h}" x2="{left + plot_w}" y2="{10 + plot_h}" stroke="#888"/>',
        f'<text x="0" y="16">{top:,.0f}</text><text x="0" y="{10 + plot_h}">0</text>',
        f'<text x="{left}" y="{height - 4}">{since:%H:%M:%S}</text>',
        f'<text x="{left + plot_w - 50}" y="{height - 4}">{until:%H:%M:%S}</text>',
    ]
    for i, (name, points) in enumerate(sorted(series.items())):
        color = _COLORS[i % len(_COLORS)]
        coords = " ".join(
            f"{left + (at - since).total_seconds() / span * plot_w:.1f},{10 + plot_h - v / top * plot_h:.1f}"
            for at, v in points)
        if len(points) == 1:
            x, y = coords.split(",")
            parts.append(f'<circle cx="{x}" cy="{y}" r="2" fill="{color}"/>')
        else:
            parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{coords}"/>')
        lx, ly = left + (i % 4) * 170, height + 12 + (i // 4) * 16
        parts.append(f'<rect x="{lx}" y="{ly - 9}" width="10" height="10" fill="{color}"/>'
                     f'<text x="{lx + 14}" y="{ly}">{escape(name)} ({points[-1][1]:,.0f})</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # names escaped, every other value a number we formatted


def topic_rates(*, since: datetime) -> dict[str, float]:
    """Messages per second written to each consumed topic since `since`, from the end
    offsets of the lag samples (one consumer's view of each topic): topics no
    registered consumer reads have none."""
    totals: dict[tuple[str, str], list[tuple[datetime, int]]] = {}
    for row in (LagSample.objects.filter(at__gte=since).values("consumer", "topic", "at").order_by("at")
                .annotate(end=Sum("end_offset"))):
        totals.setdefault((row["topic"], row["consumer"]), []).append((row["at"], row["end"]))
    rates: dict[str, float] = {}
    for (topic, _consumer), points in totals.items():
        if topic in rates or len(points) < 2:
            continue
        (a_at, a_end), (b_at, b_end) = points[0], points[-1]
        seconds = (b_at - a_at).total_seconds()
        if seconds > 0:
            rates[topic] = max(b_end - a_end, 0) / seconds
    return rates
