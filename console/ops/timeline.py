"""The topic timeline: message volume over time as bars above the message browser and
as a sparkline on each row of the topics page (console/ops/topic_pages.py calls it).

It asks streams/kafka/volume.py for the buckets (offsets_for_times probes, bounded in
calls and time), keeps the answer for CACHE_SECONDS so a refresh or a page through the
browser does not probe again, and draws it as server-side SVG in the house style of
console/ops/lag_history.py. Each bar is a link that seeks the browser to the bar's
start, and says its interval and count to a screen reader. Counts and times only:
no message content is read or shown.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from django.core.cache import cache
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from streams.kafka import volume

logger = logging.getLogger(__name__)

CACHE_SECONDS = 10
BROWSER_BUCKETS = 32  # a range cut on bucket edges takes one bar more than it spans: 1 h in 2 min bars
SPARK_BUCKETS = 13  # 1 h in 5 min bars
# The ranges an operator picks; "retained" is from the earliest retained message to now.
SPANS = {"retained": None, "15m": timedelta(minutes=15), "1h": timedelta(hours=1), "6h": timedelta(hours=6),
         "24h": timedelta(days=1), "7d": timedelta(days=7)}
SPAN_LABELS = {"retained": "all retained", "15m": "last 15 min", "1h": "last hour", "6h": "last 6 hours",
               "24h": "last 24 hours", "7d": "last 7 days"}


def span_choice(text: str | None, *, default: str = "retained") -> str:
    return text if text in SPANS else default


def _cached(key: str, compute: Callable[[], object]) -> object:
    """`compute()` kept for CACHE_SECONDS; a cache that does not answer (Redis away) only costs a probe."""
    try:
        found = cache.get(key)
    except Exception:  # noqa: BLE001 - any cache backend failure: probe instead
        logger.debug("timeline_cache_unavailable key=%s", key)
        found = None
    if found is not None:
        return found
    value = compute()
    try:
        cache.set(key, value, CACHE_SECONDS)
    except Exception:  # noqa: BLE001
        pass
    return value


def browser_timeline(*, topic: str, partition: int | None, span: str) -> volume.Timeline:
    """The browser's chart: one topic, all partitions or one, over `span` (a SPANS key).
    BrowseError for an unknown topic or partition, VolumeError when Kafka does not answer."""
    delta = SPANS[span_choice(span)]

    def compute() -> volume.Timeline:
        since = datetime.now(timezone.utc) - delta if delta else None
        return volume.topic_timeline(topic, partition=partition, since=since, max_buckets=BROWSER_BUCKETS)

    return _cached(f"ops-timeline:{topic}:{partition}:{span}", compute)  # type: ignore[return-value]


def topic_row_timelines(*, targets: list[volume.Target], span: str) -> dict[str, volume.Timeline]:
    """Every row's sparkline of the topics page, probed together over `span`."""
    delta = SPANS[span_choice(span, default="1h")] or SPANS["1h"]
    digest = hashlib.sha1(",".join(sorted({t.topic for t in targets})).encode()).hexdigest()[:16]

    def compute() -> dict[str, volume.Timeline]:
        return volume.topics_timelines(targets, since=datetime.now(timezone.utc) - delta, max_buckets=SPARK_BUCKETS)

    return _cached(f"ops-timelines:{span}:{digest}", compute)  # type: ignore[return-value]


# --------------------------------------------------------------------- words


def width_text(width: timedelta) -> str:
    seconds = int(width.total_seconds())
    for unit, name in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= unit and seconds % unit == 0:
            return f"{seconds // unit} {name}"
    return f"{seconds} s"


def _stamp(when: datetime, width: timedelta) -> str:
    if width >= timedelta(days=1):
        return f"{when:%Y-%m-%d}"
    return f"{when:%Y-%m-%d %H:%M:%S}" if width < timedelta(minutes=1) else f"{when:%Y-%m-%d %H:%M}"


def interval_text(bucket: volume.Bucket, width: timedelta) -> str:
    return f"{_stamp(bucket.start, width)} to {_stamp(bucket.end, width)} UTC"


def bar_text(bucket: volume.Bucket, width: timedelta) -> str:
    """What a bar says: its interval, its count, and each partition's when there are several."""
    text = f"{interval_text(bucket, width)}: {bucket.count:,} message{'s' if bucket.count != 1 else ''}"
    if len(bucket.counts) > 1:
        text += " (" + ", ".join(f"partition {p}: {n:,}" for p, n in sorted(bucket.counts.items())) + ")"
    return text


def caption(timeline: volume.Timeline, *, partition: int | None, span: str) -> str:
    """What the chart covers, in a sentence under it."""
    if not timeline.buckets:
        return "No bucket could be probed in time."
    first, last = timeline.buckets[0], timeline.buckets[-1]
    where = f"partition {partition}" if partition is not None else (
        f"all {len(timeline.partitions)} partitions" if len(timeline.partitions) != 1 else "its one partition")
    text = (f"Messages per {width_text(timeline.width)} on {where}, {_stamp(first.start, timeline.width)} to "
            f"{_stamp(last.end, timeline.width)} UTC ({SPAN_LABELS.get(span, span)}): {timeline.total:,} in "
            f"{len(timeline.buckets)} bars, from {timeline.calls} offsets_for_times probe"
            f"{'s' if timeline.calls != 1 else ''}.")
    if timeline.cut:
        text += f" Probing stopped at its {volume.PROBE_SECONDS:g} s limit: older bars are missing."
    if timeline.unavailable:
        text += " Not counted: " + "; ".join(f"partition {p} ({why})" for p, why in sorted(timeline.unavailable.items())) + "."
    return text


# --------------------------------------------------------------------- drawing


def bars_svg(timeline: volume.Timeline, *, href: Callable[[volume.Bucket], str], label: str,
             selected: datetime | None = None, width: int = 720, height: int = 120) -> SafeString:
    """Bars of the bucket counts with a y axis from 0 to the highest; each bar links to `href(bucket)`
    and the bar holding `selected` is drawn darker. The chart is a labelled group, not an image,
    so a screen reader reaches each bar's link and its label."""
    left, bottom, top_pad = 60, 18, 8
    plot_w, plot_h = width - left - 10, height - bottom - top_pad
    peak = max(timeline.peak, 1)
    n = max(len(timeline.buckets), 1)
    step = plot_w / n
    gap = 1 if step > 4 else 0
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="ops-timeline" width="{width}" height="{height}" '
        f'role="group" aria-label="{escape(label)}" style="font:11px sans-serif">',
        f'<line x1="{left}" y1="{top_pad}" x2="{left}" y2="{top_pad + plot_h}" stroke="#888"/>',
        f'<line x1="{left}" y1="{top_pad + plot_h}" x2="{left + plot_w}" y2="{top_pad + plot_h}" stroke="#888"/>',
        f'<text x="0" y="{top_pad + 8}">{timeline.peak:,}</text><text x="0" y="{top_pad + plot_h}">0</text>',
    ]
    if timeline.buckets:
        parts.append(f'<text x="{left}" y="{height - 4}">{escape(_stamp(timeline.buckets[0].start, timeline.width))}</text>')
        parts.append(f'<text x="{left + plot_w}" y="{height - 4}" text-anchor="end">'
                     f'{escape(_stamp(timeline.buckets[-1].end, timeline.width))}</text>')
    for i, bucket in enumerate(timeline.buckets):
        x = left + i * step
        h = bucket.count / peak * plot_h
        chosen = selected is not None and bucket.start <= selected < bucket.end
        color = "#1f4d63" if chosen else "#417690"
        text = escape(bar_text(bucket, timeline.width))
        parts.append(
            f'<a class="ops-timeline-bar{" selected" if chosen else ""}" href="{escape(href(bucket))}" '
            f'aria-label="{text}" data-start="{bucket.start:%Y-%m-%dT%H:%M:%S}" data-count="{bucket.count}">'
            f'<title>{text}</title>'
            f'<rect x="{x:.1f}" y="{top_pad}" width="{max(step - gap, 1):.1f}" height="{plot_h}" fill="transparent"/>'
            f'<rect x="{x:.1f}" y="{top_pad + plot_h - max(h, 1 if bucket.count else 0):.1f}" '
            f'width="{max(step - gap, 1):.1f}" height="{max(h, 1 if bucket.count else 0):.1f}" fill="{color}"/></a>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # labels and links escaped, every other value a number we formatted


def spark_svg(timeline: volume.Timeline, *, href: Callable[[volume.Bucket], str],
              width: int = 120, height: int = 24) -> SafeString:
    """The topics page's sparkline: the same bars, small, scaled to their own highest."""
    if not timeline.buckets:
        return mark_safe(f'<svg class="ops-spark" width="{width}" height="{height}" role="img" '
                         f'aria-label="volume not probed in time"><text x="2" y="{height - 8}" '
                         f'style="font:10px sans-serif" fill="#888">not probed</text></svg>')
    peak = max(timeline.peak, 1)
    step = width / len(timeline.buckets)
    label = escape(f"messages per {width_text(timeline.width)}: {timeline.total:,} in all, highest {timeline.peak:,}")
    parts = [f'<svg class="ops-spark ops-timeline-spark" width="{width}" height="{height}" role="group" '
             f'aria-label="{label}"><title>{label}</title>']
    for i, bucket in enumerate(timeline.buckets):
        h = bucket.count / peak * (height - 2)
        text = escape(bar_text(bucket, timeline.width))
        parts.append(
            f'<a class="ops-timeline-bar" href="{escape(href(bucket))}" aria-label="{text}" '
            f'data-start="{bucket.start:%Y-%m-%dT%H:%M:%S}" data-count="{bucket.count}"><title>{text}</title>'
            f'<rect x="{i * step:.1f}" y="0" width="{max(step - 1, 1):.1f}" height="{height}" fill="transparent"/>'
            f'<rect x="{i * step:.1f}" y="{height - max(h, 1 if bucket.count else 0):.1f}" '
            f'width="{max(step - 1, 1):.1f}" height="{max(h, 1 if bucket.count else 0):.1f}" fill="#417690"/></a>')
    parts.append("</svg>")
    return mark_safe("".join(parts))
