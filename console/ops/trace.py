"""The trace page's data: "find an event" by trace id or by a business key, and the
path it took through the pipelines, from what the console stores and the topics hold
(no tracing backend needed). The view is pages.py's `trace_page`, the template
templates/ops/trace.html.

A query is one text and a kind (trace_query.py's `parse_query`): a trace id (32 hex digits, a UUID or a
whole `traceparent`), an order id, a telemetry id and time (`7 1767225600`), a file name,
a product id, or `auto`, which takes a trace id for one and otherwise tries, in turn,
a stored order, a file, a product and a telemetry reading, and else searches it as an order.

What each kind follows (`trace`), each hop linked to its page (trace_hops.py):

* an order: its `orders` message, its `processed-orders` message (keyed by order id), the
  stored ProcessedOrder (window, late, trace id), the ProductWindow it counted in (final
  or open, published or not), the `product-metrics` messages of that product and window,
  and any quarantine record of it with its dead letter;
* a file: its IngestedFile rows, their `file_events` messages, Celery tasks and
  quarantine records;
* a trace id: the quarantine records and files that store it, every message whose
  `traceparent` carries it, and the orders and files those lead to, each followed as above
  (processed orders store their trace id unindexed: an order is reached by its messages,
  or by its event time near them);
* a telemetry id and time: the stored metric or work-order reading and its message;
* a product id: the catalog row, its latest windows and `product-metrics` messages.

Topic scans are bounded in time, messages and seconds (trace_scan.py); each says what it
read and whether a bound stopped it. Rows are read by their indexes, a few at a time.

Imports: the apps' models it reads (orders, products, telemetry, ingest, quarantine),
Celery's task results, the platform's tracing and topic names, trace_hops.py, trace_query.py
and trace_scan.py.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.db.models.expressions import RawSQL
from django.urls import reverse
from django.utils import timezone
from django_celery_results.models import TaskResult

from ingest.models import IngestedFile
from quarantine.models import QuarantineRecord
from streams.kafka import tracing
from streams.kafka.browse import Filters, Message
from streams.kafka.topics import topic_name
from streams.orders.models import ProcessedOrder, ProductWindow
from streams.products.models import Product
from streams.telemetry.models import MachineMetric, WorkOrderReading

from .trace_hops import Collector, Hop, admin_perm, admin_url, json_field
from .trace_query import KINDS, MAX_QUERY, Query, QueryError, parse_query
from .trace_scan import Budget, ScanNote

SHOWN = 5  # orders or files one trace id or file name is followed into
METRICS_SHOWN = 20  # product-metrics messages of one window shown, the newest
RECORD_LOOKBACK = timedelta(days=7)  # how far back quarantine records of an order are searched
SLACK = timedelta(seconds=5)
ORDER_QUERY_MS = 1000  # the stored orders of a trace id, searched by event time, at most this long

# Hop titles of the messages of known topics (logical names), and who publishes them.
_TITLES = {"orders": ("Order on orders", ""), "processed_orders": ("Processed order on processed-orders", "orders"),
           "product_metrics": ("Window on product-metrics", "order_windows"),
           "file_events": ("Announcement on file_events", "the inbox watcher, an upload or the API")}

__all__ = ["KINDS", "MAX_QUERY", "Budget", "Query", "QueryError", "Trace", "parse_query", "trace"]


@dataclass
class Trace:
    query: Query
    kind: str  # what it was searched as (auto resolved)
    subject: str
    hops: list[Hop]
    scans: list[ScanNote]
    notes: list[str] = field(default_factory=list)
    trace_ids: list[str] = field(default_factory=list)

    @property
    def stopped_early(self) -> list[ScanNote]:
        return [s for s in self.scans if s.stopped or s.error]


def lookback() -> timedelta:
    """How far back a search with nothing stored to start from looks (CONSOLE_TRACE_LOOKBACK_MINUTES)."""
    return timedelta(minutes=settings.CONSOLE_TRACE_LOOKBACK_MINUTES)


def resolve(query: Query) -> str:
    """The kind `auto` stands for: trace id, then what is stored under the text, else an order."""
    if query.kind != "auto":
        return query.kind
    text = query.text
    if ProcessedOrder.objects.filter(pk=text[:128]).exists():
        return "order"
    if query.trace_id:
        return "trace"
    if IngestedFile.objects.filter(name=text).exists() or QuarantineRecord.objects.filter(
            source=QuarantineRecord.Source.FILE, file_name=text).exists():
        return "file"
    if Product.objects.filter(product_id=text[:64]).exists() or \
            ProductWindow.objects.filter(product_id=text[:64]).exists():
        return "product"
    return "telemetry" if query.telemetry else "order"


def trace(query: Query) -> Trace:
    """Follow the query's event: its hops in time order, the scans made, what was not found."""
    kind = resolve(query)
    walk = _Walk()
    if kind == "trace":
        subject = f"trace {query.trace_id}"
        walk.trace(query.trace_id)
    elif kind == "telemetry":
        ident, epoch = query.telemetry  # type: ignore[misc]
        subject = f"telemetry id {ident} at {datetime.fromtimestamp(epoch, tz=UTC):%Y-%m-%d %H:%M:%S} UTC"
        walk.telemetry(ident, epoch)
    elif kind == "file":
        subject = f"file {query.text}"
        walk.file(query.text)
    elif kind == "product":
        subject = f"product {query.text}"
        walk.product(query.text)
    else:
        subject = f"order {query.text}"
        walk.order(query.text)
    if not walk.hops:
        walk.notes.insert(0, f"Nothing was found for {subject}: not stored, and not in the scanned ranges below.")
    return Trace(query=query, kind=kind, subject=subject, hops=walk.timeline(), scans=walk.scans,
                 notes=walk.notes, trace_ids=list(walk.trace_ids))


class _Walk(Collector):
    """The paths, each adding its hops to the collector."""

    def __init__(self) -> None:
        super().__init__()
        self.orders_seen: dict[str, Message] = {}  # order id -> its `orders` message
        self.processed_seen: dict[str, list[Message]] = {}  # order id -> its `processed-orders` messages

    def _known(self, m: Message, logical: str) -> None:
        title, producer = _TITLES.get(logical, (f"Message on {m.topic}", ""))
        self.message(m, title, producer=producer)

    # ------------------------------------------------------------------ orders
    def order(self, order_id: str) -> None:
        row = ProcessedOrder.objects.filter(pk=order_id).first()
        records = _order_records(order_id, around=row.stored_at if row else None)
        orders_topic = topic_name("orders")
        if row is not None:
            self._orders_message(order_id, since=max(min(row.ordered_at, row.processed_at) - timedelta(minutes=1),
                                                     row.processed_at - lookback()),
                                 until=row.processed_at + SLACK)
            self._processed_messages(order_id, since=row.processed_at - SLACK, until=row.stored_at + SLACK)
            self._stored_order(row)
        else:
            processed_topic = topic_name("processed_orders")
            for record in records:  # the message each record came from, read at its place
                if record.topic == orders_topic and order_id not in self.orders_seen:
                    found = self.origin_message(record, "Order on orders (dead-lettered)")
                    if found is not None:
                        self.orders_seen[order_id] = found
                elif record.topic == processed_topic:
                    found = self.origin_message(record, "Processed order on processed-orders (dead-lettered)")
                    self.processed_seen.setdefault(order_id, []).extend([found] if found else [])
            if order_id not in self.orders_seen:
                now = timezone.now()
                self._orders_message(order_id, since=now - lookback(), until=now)
            m = self.orders_seen.get(order_id)
            if m is not None and not records and m.timestamp:
                self._processed_messages(order_id, since=m.timestamp - SLACK, until=m.timestamp + lookback())
            self.notes.append(f"No stored order {order_id}: "
                              + ("it was dead-lettered (below)." if records else
                                 "not processed yet, or not an order id."))
        for record in records:
            self.record(record)

    def _orders_message(self, order_id: str, *, since: datetime, until: datetime) -> None:
        if order_id in self.orders_seen:
            return
        prefilter = Filters(text=order_id)
        found = self.scan("orders", since=since, until=until, want=1,
                          match=lambda m: prefilter.match(m) and json_field(m.value, "order_id") == order_id,
                          purpose=f"the order {order_id} as it arrived")
        for m in found:
            self.orders_seen[order_id] = m
            self._known(m, "orders")

    def _processed_messages(self, order_id: str, *, since: datetime, until: datetime) -> None:
        if order_id not in self.processed_seen:
            key = order_id.encode()
            self.processed_seen[order_id] = self.scan(
                "processed_orders", since=since, until=until, newest_first=False, match=lambda m: m.key == key,
                purpose=f"the order {order_id} as orders forwarded it (key)")
        for m in self.processed_seen[order_id]:
            self._known(m, "processed_orders")

    def _stored_order(self, row: ProcessedOrder) -> None:
        details = [("product", row.product_id), ("ordered at", f"{row.ordered_at:%Y-%m-%d %H:%M:%S}"),
                   ("window", f"{row.window_start:%Y-%m-%d %H:%M:%S}"),
                   ("late", "yes, held out of the totals" if row.late and not row.released_at else
                    "yes, released" if row.late else "no")]
        self.add(("row", "processedorder", row.pk), Hop(
            kind="row", title="Stored order (ProcessedOrder)", at=row.stored_at, where=row.order_id,
            url=admin_url(ProcessedOrder, row.pk), perm=admin_perm(ProcessedOrder), details=details,
            consumer="order_windows", trace_id=self.saw_trace(row.trace_id)))
        window = ProductWindow.objects.filter(product_id=row.product_id, window_start=row.window_start).first()
        if window is None:
            self.notes.append(f"The window of order {row.order_id} ({row.product_id}, "
                              f"{row.window_start:%Y-%m-%d %H:%M}) is not stored.")
            return
        self._window(window, consumer="order_windows")
        last = max(filter(None, [window.final_published_at, window.updated_at, row.stored_at]))
        self._metrics(window, since=row.stored_at - SLACK, until=last + SLACK * 2)

    def _window(self, window: ProductWindow, *, consumer: str = "") -> None:
        published = (f"final state published {window.final_published_at:%H:%M:%S}" if window.final_published_at
                     else "final state not published yet" if window.final else "open updates only")
        details = [("product", window.product_id),
                   ("window", f"{window.window_start:%Y-%m-%d %H:%M:%S} – {window.window_end:%H:%M:%S}"),
                   ("state", "final" if window.final else "open"), ("published", published)]
        if window.late_count:
            details.append(("late orders held", str(window.late_count)))
        self.add(("window", window.pk), Hop(
            kind="window", title="Window (ProductWindow)" + (" — final" if window.final else " — open"),
            at=window.finalized_at or window.updated_at, where=f"#{window.pk}", url=admin_url(ProductWindow, window.pk),
            perm=admin_perm(ProductWindow), details=details, consumer=consumer))

    def _metrics(self, window: ProductWindow, *, since: datetime, until: datetime) -> None:
        key, start = window.product_id.encode(), int(window.window_start.timestamp())
        found = self.scan("product_metrics", since=since, until=until, newest_first=False,
                          match=lambda m: m.key == key and json_field(m.value, "window_start") == start,
                          purpose=f"the window messages of {window.product_id} at {window.window_start:%H:%M}")
        if len(found) > METRICS_SHOWN:
            self.notes.append(f"{len(found)} product-metrics messages of that window; the newest "
                              f"{METRICS_SHOWN} are shown.")
        for m in found[-METRICS_SHOWN:]:
            final = json_field(m.value, "final") is True
            self.message(m, "Window on product-metrics" + (" — final" if final else " — open update"),
                         producer="order_windows", details=[("state", "final" if final else "open")],
                         batch_trace=True)

    # ------------------------------------------------------------------ files
    def file(self, name: str) -> None:
        files = list(IngestedFile.objects.filter(name=name).select_related("quarantine")
                     .order_by("-created_at")[:SHOWN])
        if not files and "/" in name:
            files = list(IngestedFile.objects.filter(path=name).select_related("quarantine")[:SHOWN])
        for f in files:
            self.file_row(f)
        base = name.rsplit("/", 1)[-1]
        for record in QuarantineRecord.objects.filter(source=QuarantineRecord.Source.FILE,
                                                      file_name=base).order_by("-created_at")[:SHOWN]:
            self.record(record)
        if not files:
            now = timezone.now()
            wanted = name.encode()
            for m in self.scan("file_events", since=now - lookback(), until=now, want=SHOWN,
                               match=lambda m: (m.key or b"") == wanted or (m.key or b"").endswith(b"/" + wanted),
                               purpose=f"announcements of {name}"):
                self._known(m, "file_events")
            self.notes.append(f"No ingested file is named {name}.")

    def file_row(self, f: IngestedFile) -> None:
        details = [("status", f.get_status_display()), ("rows", f"{f.rows_loaded:,} loaded of {f.rows_total:,}"),
                   ("path", f.path), ("checksum", f.checksum[:12])]
        if f.reason:
            details.append(("reason", f.reason))
        self.add(("file", f.pk), Hop(
            kind="file", title=f"Ingested file #{f.pk}", at=f.created_at, where=f.name,
            url=admin_url(IngestedFile, f.pk), perm=admin_perm(IngestedFile), details=details, consumer="files",
            trace_id=self.saw_trace(f.trace_id),
            red=f.status in (IngestedFile.Status.QUARANTINED, IngestedFile.Status.FAILED)))
        key = f.path.encode()
        for m in self.scan("file_events", since=f.created_at - timedelta(minutes=2), until=f.created_at + SLACK,
                           want=1, match=lambda m: m.key == key, purpose=f"the announcement of {f.path}"):
            self._known(m, "file_events")
        if f.task_id:
            result = TaskResult.objects.filter(task_id=f.task_id).first()
            self.add(("task", f.task_id), Hop(
                kind="task", title="Celery task ingest.process_file", at=f.started_at or (result and result.date_done),
                where=f.task_id, url=reverse("admin:django_celery_results_taskresult_changelist") + f"?q={f.task_id}",
                perm=admin_perm(TaskResult),
                details=[("task id", f.task_id), ("state", result.status if result else "no result stored"),
                         ("attempts", str(f.attempts))], red=bool(result and result.status == "FAILURE")))
        if f.quarantine is not None:
            self.record(f.quarantine)

    # ------------------------------------------------------------------ trace ids
    def trace(self, trace_id: str) -> None:
        self.saw_trace(trace_id)
        uid = uuid.UUID(trace_id)
        records = list(QuarantineRecord.objects.filter(trace_id=uid).order_by("-created_at")[:SHOWN * 4])
        files = list(IngestedFile.objects.filter(trace_id=uid).select_related("quarantine")
                     .order_by("-created_at")[:SHOWN])
        times = [r.created_at for r in records] + [f.created_at for f in files]
        now = timezone.now()
        since, until = (min(times) - timedelta(minutes=2), max(times) + timedelta(minutes=10)) if times \
            else (now - lookback(), now)
        carries = Filters(header=f"{tracing.TRACEPARENT}={trace_id}")
        order_ids: dict[str, None] = {}

        def scan_for_trace(logicals: list[str]) -> None:
            for logical in logicals:
                for m in self.scan(logical, since=since, until=until, purpose=f"messages of trace {trace_id}",
                                   match=lambda m: carries.match(m) and tracing.trace_id_of(
                                       tracing.message_traceparent(m.headers)) == trace_id):
                    if logical == "orders" and isinstance(order_id := json_field(m.value, "order_id"), str):
                        self.orders_seen.setdefault(order_id, m)
                        order_ids.setdefault(order_id, None)
                    elif logical == "processed_orders" and m.key:
                        order_id = m.key.decode("utf-8", "replace")
                        self.processed_seen.setdefault(order_id, []).append(m)
                        order_ids.setdefault(order_id, None)
                    self._known(m, logical)

        # The order hops first, and what they lead to, so the wall clock goes to them before the rest.
        scan_for_trace(["orders", "processed_orders"])
        if not order_ids:
            for order_id in self._orders_of_trace(uid, since=since, until=until):
                order_ids.setdefault(order_id, None)
        if len(order_ids) > SHOWN:
            self.notes.append(f"{len(order_ids)} orders carry this trace; the first {SHOWN} are followed.")
        for order_id in list(order_ids)[:SHOWN]:
            self.order(order_id)
        for f in files:
            self.file_row(f)
        for record in records:
            self.record(record)
        scan_for_trace([t for t in settings.KAFKA_TOPICS if t not in ("orders", "processed_orders")])

    def _orders_of_trace(self, uid: uuid.UUID, *, since: datetime, until: datetime) -> list[str]:
        """Stored orders of the trace whose event time falls in the scanned range: the trace id is
        not indexed, so the query reads the range by its time index, and gives up after ORDER_QUERY_MS."""
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SET LOCAL statement_timeout = %s", [ORDER_QUERY_MS])
                return list(ProcessedOrder.objects.filter(trace_id=uid, ordered_at__gte=since, ordered_at__lte=until)
                            .values_list("pk", flat=True)[:SHOWN + 1])
        except OperationalError:
            self.notes.append(f"Stored orders of this trace by event time were not searched to the end: the "
                              f"query took longer than {ORDER_QUERY_MS} ms.")
            return []

    # ------------------------------------------------------------------ telemetry and products
    def telemetry(self, ident: int, epoch: int) -> None:
        at = datetime.fromtimestamp(epoch, tz=UTC)
        kinds = (("metrics", MachineMetric, MachineMetric.objects.filter(parameter_id=ident, time=epoch).first(),
                  "Machine metric (MachineMetric)", "id"),
                 ("workorders", WorkOrderReading, WorkOrderReading.objects.filter(product=ident, time=epoch).first(),
                  "Work-order reading (WorkOrderReading)", "product"))
        stored = [k for k in kinds if k[2] is not None]
        for logical, model, row, title, field_name in stored or kinds:
            if row is not None:
                self.add(("row", model._meta.model_name, row.pk), Hop(
                    kind="row", title=title, at=row.received_at, where=f"{ident} at {epoch}",
                    url=admin_url(model, row.pk), perm=admin_perm(model), consumer="telemetry",
                    details=[("id", str(ident)), ("time", f"{at:%Y-%m-%d %H:%M:%S} ({epoch})"),
                             ("received", f"{row.received_at:%Y-%m-%d %H:%M:%S}")]))
                since = max(min(at, row.received_at) - timedelta(minutes=1), row.received_at - lookback())
                until = row.received_at + SLACK
            else:
                since, until = at - timedelta(minutes=1), at + lookback()
            key = str(ident).encode()
            for m in self.scan(logical, since=since, until=until, want=1, purpose=f"the reading {ident} at {epoch}",
                               match=lambda m, f=field_name: m.key == key and json_field(m.value, "time") == epoch
                               and json_field(m.value, f) == ident):
                self.message(m, f"Reading on {m.topic}")
        if not stored:
            self.notes.append(f"No metric or work-order reading is stored for id {ident} at {epoch}.")

    def product(self, product_id: str) -> None:
        product = Product.objects.filter(product_id=product_id).first()
        if product is not None:
            self.add(("catalog", product.pk), Hop(
                kind="catalog", title="Product in the catalog", at=product.created_at, where=product_id,
                url=admin_url(Product, product.pk), perm=admin_perm(Product),
                details=[("name", product.name),
                         ("deleted", f"{product.deleted_at:%Y-%m-%d %H:%M:%S}" if product.deleted_at else "no")],
                red=product.deleted_at is not None))
        windows = list(ProductWindow.objects.filter(product_id=product_id).order_by("-window_start")[:10])
        for window in windows:
            self._window(window, consumer="order_windows")
        now = timezone.now()
        key = product_id.encode()
        for m in self.scan("product_metrics", since=now - lookback(), until=now, want=10,
                           match=lambda m: m.key == key, purpose=f"the latest window messages of {product_id}"):
            final = json_field(m.value, "final") is True
            start = json_field(m.value, "window_start")
            self.message(m, "Window on product-metrics" + (" — final" if final else " — open update"),
                         producer="order_windows", batch_trace=True, details=[
                             ("window", f"{datetime.fromtimestamp(start, tz=UTC):%Y-%m-%d %H:%M}"
                              if isinstance(start, int) else "?"), ("state", "final" if final else "open")])


def _order_records(order_id: str, *, around: datetime | None) -> list[QuarantineRecord]:
    """The quarantine records of an order's messages (either hop): their payload holds the order
    id as a JSON string, within a day of `around` (the last RECORD_LOOKBACK without one)."""
    needle = ('"' + order_id.replace("\\", "\\\\").replace('"', '\\"') + '"').encode()
    since = around - timedelta(days=1) if around else timezone.now() - RECORD_LOOKBACK
    records = (QuarantineRecord.objects
               .filter(source=QuarantineRecord.Source.MESSAGE, created_at__gte=since,
                       topic__in=[topic_name("orders"), topic_name("processed_orders")])
               .alias(at=RawSQL("position(%s::bytea in payload)", (needle,))).filter(at__gt=0)
               .order_by("-created_at")[:SHOWN * 2])
    return [r for r in records if json_field(bytes(r.payload or b""), "order_id") in (order_id, None)]

