"""The operations pages of topics and messages: the topic list with retention,
rates and a volume sparkline per row, the message browser (seek, page, filter)
under its timeline of message volume, one message whole, producing a message and
re-driving dead letters from their topic.

Views only: the reads are streams/kafka/browse.py, the timelines console/ops/timeline.py,
the actions console/ops/kafka_actions.py.
Reading needs console.view_operations and console.view_topic_messages; producing
needs console.produce_message, re-driving console.redrive_dead_letters (console/ops/pages.py
wires the permissions). Nothing here commits a consumer offset.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

from confluent_kafka import KafkaException
from django.contrib import admin
from django.contrib import messages as admin_messages
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone as dj_timezone
from django.utils.dateparse import parse_datetime

from quarantine.models import QuarantineRecord
from streams.kafka import browse, cluster, volume
from streams.kafka.client import failure_reason
from streams.kafka.headers import DLQ_PREFIX

from . import kafka_actions
from ..audit import ActionError, ActionRefused
from .highlight import style_css, value_html
from .lag_history import topic_rates
from .timeline import SPAN_LABELS, SPANS, bars_svg, browser_timeline, caption, spark_svg, span_choice, \
    topic_row_timelines, width_text

PRODUCE_MESSAGE = "console.produce_message"
REDRIVE_DEAD_LETTERS = "console.redrive_dead_letters"
RATE_MINUTES = 5


def _context(request: HttpRequest, title: str, **extra) -> dict:
    return {**admin.site.each_context(request), "title": title, **extra}


def _topics_overview(**kwargs) -> tuple[list[cluster.TopicInfo], str]:
    """The cluster's topics, or none and the broker's reason when it does not answer."""
    try:
        return cluster.topics_overview(**kwargs), ""
    except KafkaException as exc:
        return [], failure_reason(exc)


def topics(request: HttpRequest) -> HttpResponse:
    infos, error = _topics_overview(include_internal=request.GET.get("internal") == "1")
    configs = cluster.topic_configs([t.name for t in infos])
    rates = topic_rates(since=dj_timezone.now() - timedelta(minutes=RATE_MINUTES))
    dead_letter = kafka_actions.dead_letter_topics()
    span = span_choice(request.GET.get("span"), default="1h")
    span = "1h" if span == "retained" else span  # one range for every row, so the rows compare
    sparks, spark_error, spark_width = _row_sparklines(infos, span)
    rows = [{"info": t, "retention": cluster.retention_text(configs.get(t.name, {})), "rate": rates.get(t.name),
             "writers": dead_letter.get(t.name, []), "spark": sparks.get(t.name)} for t in infos]
    max_messages = max([t.messages for t in infos] + [1])
    keep = {k: v for k, v in request.GET.items() if k != "span"}
    return TemplateResponse(request, "ops/topics.html", _context(
        request, "Kafka topics", rows=rows, max_messages=max_messages, rate_minutes=RATE_MINUTES, error=error,
        span=span, span_label=SPAN_LABELS[span], spark_error=spark_error,
        spark_width=spark_width,
        span_links=[(k, SPAN_LABELS[k], "?" + urlencode({**keep, "span": k})) for k in SPANS if k != "retained"],
    ))


def _row_sparklines(infos: list[cluster.TopicInfo], span: str) -> tuple[dict[str, str], str, str]:
    """Each topic's volume sparkline (its bars link to the browser at their time) and the width of
    a bar, or the broker's reason."""
    targets = [volume.Target(t.name, p.partition, p.low, p.high) for t in infos for p in t.partitions if not p.error]
    try:
        timelines = topic_row_timelines(targets=targets, span=span)
    except volume.VolumeError as exc:
        return {}, str(exc), ""
    out = {}
    for name, line in timelines.items():
        base = reverse("ops-topic-messages", args=[name])
        out[name] = spark_svg(line, href=lambda b, base=base: base + "?" + urlencode(
            {"seek": "time", "time": f"{b.start:%Y-%m-%dT%H:%M:%S}", "span": span}))
    widths = [width_text(line.width) for line in timelines.values()]
    return out, "", widths[0] if widths else ""


# ------------------------------------------------------------------ browser


def _positions(text: str) -> dict[int, int]:
    """"0:12,1:40" -> {0: 12, 1: 40}; ValueError on anything else."""
    out = {}
    for part in filter(None, text.split(",")):
        partition, _, offset = part.partition(":")
        out[int(partition)] = int(offset)
    return out


def _positions_text(positions: dict[int, int]) -> str:
    return ",".join(f"{p}:{o}" for p, o in sorted(positions.items()))


def _when(text: str) -> datetime:
    parsed = parse_datetime(text.strip().replace(" ", "T"))
    if parsed is None:
        raise ValueError(f"{text!r} is not a date and time (YYYY-MM-DDTHH:MM[:SS], UTC)")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _quarantine_links(page_messages: list[browse.Message]) -> dict[tuple[int, int], int]:
    """(partition, offset) of each shown message -> its quarantine record, in one query.
    A dead letter is matched by its x-dlq-original-* headers, any other message by itself."""
    wanted: dict[tuple[str, str | None, int, int], tuple[int, int]] = {}
    for m in page_messages:
        dlq = m.dead_letter
        try:
            if dlq.get("original-topic"):
                key = (dlq["original-topic"], dlq.get("consumer"), int(dlq.get("original-partition", "")),
                       int(dlq.get("original-offset", "")))
            else:
                key = (m.topic, None, m.partition, m.offset)
        except ValueError:
            continue
        wanted[key] = (m.partition, m.offset)
    if not wanted:
        return {}
    query = Q(pk__in=[])
    for topic, consumer, partition, offset in wanted:
        query |= Q(topic=topic, partition=partition, offset=offset, **({"consumer": consumer} if consumer else {}))
    links = {}
    for pk, consumer, topic, partition, offset in (
            QuarantineRecord.objects.filter(query, source=QuarantineRecord.Source.MESSAGE)
            .values_list("pk", "consumer", "topic", "partition", "offset")):
        where = wanted.get((topic, consumer, partition, offset)) or wanted.get((topic, None, partition, offset))
        if where:
            links[where] = pk
    return links


def _text(data: bytes | None, chars: int) -> str:
    text = (data or b"")[: chars * 4].decode("utf-8", "replace")
    return text[:chars] + ("…" if len(text) > chars else "")


def _dead_letter_fields(m: browse.Message) -> dict[str, str]:
    """The x-dlq-* headers with names a template can use (original_topic, ...)."""
    return {k.replace("-", "_"): v for k, v in m.dead_letter.items()}


def _preview(m: browse.Message, chars: int = 400) -> str:
    text = (m.value or b"")[: chars * 4].decode("utf-8", "replace")
    return text[:chars] + ("…" if len(text) > chars or m.size > chars * 4 else "")


def _selected_time(q) -> datetime | None:
    if q.get("seek") == "time" and not q.get("pos"):
        try:
            return _when(q.get("time", ""))
        except ValueError:
            return None
    return None


def _timeline_chart(name: str, *, partition: int | None, span: str, keep: dict, query, selected) -> dict:
    """The bars above the browser (each seeks it to its start, keeping the filters) and their caption,
    or why Kafka could not draw them; the links that change the range keep the browser where it is."""
    chart: dict = {"spans": [(k, label, "?" + urlencode({**{k2: v for k2, v in query.items() if k2 != "span"},
                                                          "span": k}))
                             for k, label in SPAN_LABELS.items()]}
    try:
        line = browser_timeline(topic=name, partition=partition, span=span)
    except (browse.BrowseError, volume.VolumeError) as exc:
        chart["error"] = str(exc)
        return chart
    chart["caption"] = caption(line, partition=partition, span=span)
    chart["svg"] = bars_svg(line, selected=selected, label=f"Message volume of {name}. {chart['caption']}",
                            href=lambda b: "?" + urlencode({**keep, "seek": "time",
                                                            "time": f"{b.start:%Y-%m-%dT%H:%M:%S}"}))
    return chart


def topic_messages(request: HttpRequest, name: str) -> HttpResponse:
    """The browser. Query: partition, seek (newest|oldest|offset|time) with offset or time,
    or a page's cursor (pos + dir); key, header, q filters; limit."""
    q = request.GET
    filters = browse.Filters(key=q.get("key", "")[:200], header=q.get("header", "")[:200], text=q.get("q", "")[:200])
    seek = q.get("seek", "newest")
    error = None
    page = None
    try:
        limit = min(max(int(q.get("limit") or 50), 1), browse.MAX_LIMIT)
        partition = int(q["partition"]) if q.get("partition", "") != "" else None
        positions: dict[int, int] | None = None
        direction = "backward"
        if q.get("pos"):
            positions, direction = _positions(q["pos"]), q.get("dir", "forward")
        elif seek == "oldest":
            direction = "forward"
        elif seek == "offset":
            offset = int(q.get("offset", ""))
            ranges = browse.topic_ranges(name)
            positions = {r.partition: offset for r in ranges if partition is None or r.partition == partition}
            direction = "forward"
        elif seek == "time":
            when = _when(q.get("time", ""))
            positions, direction = browse.offsets_for_time(name, when), "forward"
        page = browse.browse(name, positions=positions, direction=direction, limit=limit, partition=partition,
                             filters=filters)
    except browse.BrowseError as exc:
        if "does not exist" in str(exc):
            raise Http404(str(exc)) from exc
        error = str(exc)
    except (ValueError, KeyError) as exc:
        error = f"{exc}" if isinstance(exc, ValueError) and "date" in str(exc) else \
            "partition, offset and limit are whole numbers; pos is partition:offset,…"
        limit, partition = 50, None
    span = span_choice(q.get("span"))
    keep = {k: v for k, v in {"partition": q.get("partition", ""), "key": filters.key, "header": filters.header,
                                "q": filters.text, "limit": q.get("limit", ""), "span": q.get("span", "")}.items() if v}
    chart = _timeline_chart(name, partition=partition if error is None else None, span=span, keep=keep,
                            query=q, selected=_selected_time(q))
    links = {}
    rows = []
    if page is not None:
        quarantine = _quarantine_links(page.messages)
        for m in page.messages:
            rows.append({"m": m, "preview": _preview(m), "dlq": _dead_letter_fields(m),
                         "key": _text(m.key, 80) if m.key is not None else None,
                         "headers": [(k, _text(v, 120)) for k, v in m.headers if not k.startswith(DLQ_PREFIX)],
                         "record": quarantine.get((m.partition, m.offset))})
        if page.has_older or page.truncated and page.direction == "backward":
            links["older"] = "?" + urlencode({**keep, "pos": _positions_text(page.start), "dir": "backward"})
        if page.has_newer or page.truncated and page.direction == "forward":
            links["newer"] = "?" + urlencode({**keep, "pos": _positions_text(page.end), "dir": "forward"})
    size_estimate = None
    if page is not None and page.messages and not filters:
        # The Python client cannot ask the brokers for log sizes: estimate from this page's messages.
        mean = sum(m.size + len(m.key or b"") + sum(len(k) + len(v or b"") for k, v in m.headers)
                   for m in page.messages) / len(page.messages)
        size_estimate = int(mean * sum(r.high - r.low for r in page.partitions))
    dead_letter_writers = kafka_actions.dead_letter_topics().get(name, [])
    return TemplateResponse(request, "ops/messages.html", _context(
        request, f"Messages on {name}", topic=name, page=page, rows=rows, error=error, links=links,
        partitions_all=[r.partition for r in page.partitions] if page else [],
        filters=filters, seek=seek, limit=limit, partition=partition, query=q,
        dead_letter_writers=dead_letter_writers, size_estimate=size_estimate, chart=chart, span=span,
        may_produce=request.user.has_perm(PRODUCE_MESSAGE),
        may_redrive=request.user.has_perm(REDRIVE_DEAD_LETTERS) and bool(dead_letter_writers),
        record_url=reverse("admin:quarantine_quarantinerecord_changelist"),
    ))


def message_detail(request: HttpRequest, name: str, partition: int, offset: int) -> HttpResponse:
    try:
        m = browse.read_message(name, partition, offset)
    except browse.BrowseError as exc:
        raise Http404(str(exc)) from exc
    html, is_json = value_html(m.value)
    record = _quarantine_links([m]).get((m.partition, m.offset))
    dlq = _dead_letter_fields(m)
    copy_query = urlencode({"from": f"{name}:{partition}:{offset}"})
    return TemplateResponse(request, "ops/message.html", _context(
        request, f"{name}[{partition}]@{offset}", topic=name, m=m, value_html=html, is_json=is_json,
        json_css=style_css(), dlq=dlq, record=record, copy_query=copy_query,
        key_text=(m.key or b"").decode("utf-8", "replace") if m.key is not None else None,
        headers=[(k, (v or b"").decode("utf-8", "replace")) for k, v in m.headers],
        may_produce=request.user.has_perm(PRODUCE_MESSAGE),
    ))


# ------------------------------------------------------------------ actions


def produce(request: HttpRequest) -> HttpResponse:
    """GET: the form, blank or a copy of ?from=topic:partition:offset. POST: produce, audited."""
    source = request.POST.get("from") or request.GET.get("from", "")
    form = {"topic": request.GET.get("topic", ""), "key": "", "headers": "", "value": "", "from": source,
            "encoding": ""}
    if request.method == "GET" and source:
        try:
            topic, partition, offset = source.rsplit(":", 2)
            m = browse.read_message(topic, int(partition), int(offset))
        except (ValueError, browse.BrowseError) as exc:
            admin_messages.error(request, f"Cannot copy {source!r}: {exc}")
        else:
            original = m.dead_letter.get("original-topic")
            try:
                value, encoding = (m.value or b"").decode("utf-8"), ""
            except UnicodeDecodeError:  # not text: copied as base64, sent as the original bytes
                value, encoding = base64.b64encode(m.value or b"").decode(), "base64"
            form.update(
                topic=request.GET.get("topic") or topic,
                key=(m.key or b"").decode("utf-8", "replace"),
                headers="\n".join(f"{k}: {(v or b'').decode('utf-8', 'replace')}" for k, v in m.headers),
                value=value, encoding=encoding, original=original,
            )
    if request.method == "POST":
        form.update(topic=request.POST.get("topic", "").strip(), key=request.POST.get("key", ""),
                    headers=request.POST.get("headers", ""), value=request.POST.get("value", ""))
        form["encoding"] = "base64" if request.POST.get("encoding") == "base64" else ""
        try:
            headers = kafka_actions.parse_headers(form["headers"])
            try:
                value = base64.b64decode(form["value"], validate=True) if form["encoding"] else form["value"].encode()
            except (binascii.Error, ValueError) as exc:
                raise ActionRefused(f"the value is not valid base64: {exc}") from exc
            where = kafka_actions.message_produce(
                by=request.user, topic=form["topic"], value=value,
                key=form["key"].encode() if form["key"] != "" else None, headers=headers, copied_from=source)
        except ActionError as exc:
            admin_messages.error(request, f"Not produced: {exc.message}")
        else:
            admin_messages.success(request, f"Produced to {where['topic']}[{where['partition']}]@{where['offset']}"
                                            + (f", a copy of {source}" if source else "") + ".")
            return HttpResponseRedirect(reverse("ops-message", args=[where["topic"], where["partition"],
                                                                     where["offset"]]))
    names = [t.name for t in _topics_overview()[0]]
    return TemplateResponse(request, "ops/produce.html", _context(
        request, "Produce a message" if not source else f"Produce a copy of {source}", form=form, topics=names,
    ))


def redrive(request: HttpRequest, name: str) -> HttpResponse:
    """Dead letters of one partition range: GET is the dry run, POST re-drives what it showed."""
    data = request.POST if request.method == "POST" else request.GET
    plan = None
    error = None
    try:
        partition = int(data.get("partition") or 0)
        start = int(data.get("start") or 0)
        stop = int(data["stop"]) if data.get("stop", "") != "" else None
    except ValueError:
        partition, start, stop = 0, 0, None
        error = "partition, start and stop are whole numbers"
    if request.method == "POST" and error is None:
        try:
            expected = int(data["expected"]) if data.get("expected") else None
            done = kafka_actions.dead_letters_redrive(by=request.user, topic=name, partition=partition,
                                                      start=start, stop=stop if stop is not None else 2**62,
                                                      expected=expected)
        except ActionError as exc:
            admin_messages.error(request, f"Not re-driven: {exc.message}")
        else:
            targets = ", ".join(f"{n} to {t}" for t, n in done["targets"].items())
            admin_messages.success(request, f"Re-drove {done['redriven']} dead letter(s) from {name}[{partition}]: "
                                            f"{targets}.")
            return HttpResponseRedirect(reverse("ops-redrive", args=[name]) + "?" + urlencode(
                {"partition": partition, "start": start, **({"stop": stop} if stop is not None else {})}))
    if error is None:
        try:
            plan = kafka_actions.dead_letters_plan(topic=name, partition=partition, start=start, stop=stop)
        except ActionError as exc:
            error = exc.message
    return TemplateResponse(request, "ops/redrive.html", _context(
        request, f"Re-drive dead letters from {name}", topic=name, plan=plan, error=error,
        partition=partition, start=start, stop=stop,
    ))
