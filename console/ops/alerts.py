"""The active alerts: every threshold of the pipelines that is passed right now.

One function, `alerts_active()`, used by the dashboard (red rows), `/healthz`
(`degraded`, naming each alert) and `/metrics` (`console_alert_active`). It
reads PostgreSQL only — the lag history, the heartbeats, quarantine and the
file registry — never Kafka, so /healthz stays as fast as its checks and
answers the same while the broker is away (the lag it sees is at most one
CONSOLE_LAG_SAMPLE_SECONDS old). Each threshold is a setting; 0 turns it off:

* `consumer_lag_high`: a consumer's total lag above CONSOLE_ALERT_LAG_MAX in its
  newest sample (a sample counts while it is fresh: three sampling intervals);
* `consumer_lag_growing`: a consumer's lag that never fell over the last
  CONSOLE_ALERT_LAG_GROWING_MINUTES of samples, and is higher at the end;
* `consumer_heartbeat_missing`: a process that said it was running has not beaten
  for CONSUMER_HEARTBEAT_STALE_SECONDS (streams.kafka.heartbeat.consumer_health);
* `consumer_failing`: a live process waiting, paused, or the newest crashed;
* `dead_letters_rate`: more than CONSOLE_ALERT_DEAD_LETTERS_PER_MINUTE messages of
  one consumer quarantined in the last minute;
* `file_stuck`: a file queued, validating or loading whose row has not changed
  (progress updates it) for CONSOLE_ALERT_FILE_STUCK_MINUTES.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count
from django.utils import timezone

from .lag_history import LagSeries, lag_series

# At most this many stuck files are named (the metric's labels stay bounded).
MAX_STUCK_FILES = 20


@dataclass(frozen=True)
class Alert:
    name: str
    subject: str  # a consumer name, or a file
    message: str

    @property
    def key(self) -> str:
        return f"alert:{self.name}:{self.subject}"


def lag_fresh_seconds() -> float:
    """How old the newest lag sample may be and still count (three sampling intervals)."""
    return max(3 * settings.CONSOLE_LAG_SAMPLE_SECONDS, 60)


def history_window_start(now: datetime) -> datetime:
    """Where the lag history needed by the alerts (and the sparklines) starts."""
    minutes = max(settings.CONSOLE_ALERT_LAG_GROWING_MINUTES, settings.CONSOLE_SPARKLINE_MINUTES)
    return now - timedelta(minutes=minutes, seconds=2 * settings.CONSOLE_LAG_SAMPLE_SECONDS)


def _lag_alerts(series: dict[str, LagSeries], now: datetime) -> list[Alert]:
    alerts: list[Alert] = []
    fresh_since = now - timedelta(seconds=lag_fresh_seconds())
    limit = settings.CONSOLE_ALERT_LAG_MAX
    minutes = settings.CONSOLE_ALERT_LAG_GROWING_MINUTES
    for name, s in sorted(series.items()):
        newest = s.newest
        if newest is None or newest.at < fresh_since:
            continue
        if limit > 0 and newest.lag > limit:
            alerts.append(Alert("consumer_lag_high", name, f"lag {newest.lag} > {limit}"))
        if minutes > 0:
            window_start = now - timedelta(minutes=minutes)
            before = [p for p in s.points if p.at <= window_start]
            if not before:
                continue  # not enough history to say it grew for the whole window
            window = [before[-1]] + [p for p in s.points if p.at > window_start]
            rising = all(b.lag >= a.lag for a, b in zip(window, window[1:]))
            if len(window) >= 2 and rising and window[-1].lag > window[0].lag:
                alerts.append(Alert("consumer_lag_growing", name,
                                    f"lag grew from {window[0].lag} to {window[-1].lag} "
                                    f"over {minutes:g} min without falling"))
    return alerts


def _consumer_alerts(health: dict[str, dict[str, Any]]) -> list[Alert]:
    alerts = []
    for name, state in sorted(health.items()):
        if state.get("status") != "failing" or name == "error":
            continue
        reason = str(state.get("reason", ""))
        kind = "consumer_heartbeat_missing" if reason.startswith("no heartbeat") else "consumer_failing"
        alerts.append(Alert(kind, name, reason[:300]))
    return alerts


def _dead_letter_alerts(now: datetime) -> list[Alert]:
    from quarantine.models import QuarantineRecord

    limit = settings.CONSOLE_ALERT_DEAD_LETTERS_PER_MINUTE
    if limit <= 0:
        return []
    counts = (QuarantineRecord.objects
              .filter(source=QuarantineRecord.Source.MESSAGE, created_at__gte=now - timedelta(minutes=1))
              .values_list("consumer").order_by().annotate(n=Count("id")))
    return [Alert("dead_letters_rate", consumer or "unknown", f"{n} dead letters in the last minute > {limit}")
            for consumer, n in sorted(counts) if n > limit]


def _file_alerts(now: datetime) -> list[Alert]:
    from ingest.models import IngestedFile

    minutes = settings.CONSOLE_ALERT_FILE_STUCK_MINUTES
    if minutes <= 0:
        return []
    stuck = (IngestedFile.objects
             .filter(status__in=IngestedFile.IN_PROGRESS, updated_at__lt=now - timedelta(minutes=minutes))
             .order_by("updated_at").values_list("pk", "name", "status", "updated_at")[:MAX_STUCK_FILES])
    return [Alert("file_stuck", f"{name}#{pk}",
                  f"{status} without progress for {(now - updated).total_seconds() / 60:.0f} min")
            for pk, name, status, updated in stuck]


def alerts_active(*, now: datetime | None = None, health: dict[str, dict[str, Any]] | None = None,
                  series: dict[str, LagSeries] | None = None) -> list[Alert]:
    """Every passed threshold now. `health` (consumer_health) and `series` (lag_series from
    history_window_start) may be passed by a caller that has read them already."""
    from streams.kafka.heartbeat import consumer_health
    from streams.kafka.registry import consumers

    now = now or timezone.now()
    if health is None:
        health = consumer_health(list(consumers()))
    if series is None:
        series = lag_series(since=history_window_start(now))
    return [*_consumer_alerts(health), *_lag_alerts(series, now), *_dead_letter_alerts(now), *_file_alerts(now)]
