"""The consumers of seed 002, registered in streams/consumers.py: the Kafka side of
the pipeline (topics, keys, the stamp header, what each batch and tick publishes);
services/ holds what they do to the data.

* `orders`: `orders` -> validated, enriched with the catalog (one lookup per
  batch: the declared catalog lookup orders makes of products) ->
  `processed-orders`, stamped with the group's watermark; rejected orders go to
  `orders-dlq` and quarantine;
* `order_windows`: `processed-orders` -> the tumbling windows with event time
  (services/: watermark, windows, late orders) -> `product-metrics`. Open and
  final windows both leave through the outcome (BatchOutcome): published after
  the commit, the final ones marked after the broker's ack. Its `tick` closes
  windows on a quiet stream and publishes the final windows nobody published.

Both decode a plain message by wire.py's typed path and anything else by the
full rules, which name every error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import lru_cache, partial

from django.utils import timezone

from streams.kafka import tracing
from streams.kafka.decoding import decode_json_object, iso, parse_timestamp
from streams.kafka.producer import Outbound
from streams.kafka.registry import (
    BatchOutcome,
    Envelope,
    MessageRejected,
    PartitionProgress,
    Rejection,
    consumer_group,
)
from streams.kafka.topics import topic_name
from streams.products.models import Product

from .services import (
    FinalWindows,
    Order,
    OrderChecker,
    PartitionSeen,
    ProcessedOrderIn,
    enrich_order,
    metrics_outbound,
    order_windows_apply,
    order_windows_close,
    order_windows_final_unpublished,
    order_windows_mark_published,
    order_windows_tick,
    orders_stamp,
    orders_watermark_seen,
    plain_text,
    record_progress,
    validate_order,
)
from .wire import plain_order, plain_processed_order

ORDERS_CONSUMER = "orders"
WINDOWS_CONSUMER = "order_windows"

# The header `orders` stamps on each processed order: its own watermark (without
# the grace) from before the batch that order came in. Every order of that batch
# is at least that new, and `order_windows` moves its partitions' watermarks by
# the stamps, not by the orders' own times (handle_order_windows).
UPSTREAM_WATERMARK_HEADER = "x-upstream-watermark"


def decode_order(envelope: Envelope) -> Order:
    return plain_order(envelope.raw) or validate_order(decode_json_object(envelope.raw))


def _product_rejection(envelope: Envelope, product_id: str, reason: str, rule: str) -> Rejection:
    return Rejection(
        envelope=envelope,
        reason=reason,
        errors=[{"field": "product_id", "rule": rule, "message": reason, "value": repr(product_id)[:200]}],
    )


def _newest_per_partition(envelopes: Sequence[Envelope], moment: Callable[[Envelope], datetime],
                          oldest: bool = False) -> list[PartitionSeen]:
    """The newest (or `oldest`) `moment(envelope)` of each (topic, partition) of the batch."""
    newest: dict[tuple[str, int], datetime] = {}
    for envelope in envelopes:
        at = moment(envelope)
        key = (envelope.topic, envelope.partition)
        if key not in newest or (at < newest[key] if oldest else at > newest[key]):
            newest[key] = at
    return [PartitionSeen(topic=t, partition=p, max_event_at=m) for (t, p), m in sorted(newest.items())]


# The stamp while `orders` has no watermark (a partition of its input not seen yet and
# not idle): downstream, it moves no partition's watermark, so nothing closes on it.
NO_WATERMARK = datetime(1970, 1, 1, tzinfo=UTC)


def handle_orders(envelopes: Sequence[Envelope]) -> BatchOutcome:
    """Validate against the catalog (one query per batch) and enrich; stamp each
    processed order with a time no order of this batch or after it is older than
    (services.orders_stamp). The group's watermark rows move only after the broker
    acknowledged the batch (after_publish: services.orders_watermark_seen)."""
    group = consumer_group(ORDERS_CONSUMER)
    mark = orders_stamp(group=group, oldest=_newest_per_partition(envelopes, lambda e: e.value.timestamp,
                                                                  oldest=True))
    stamp = [(UPSTREAM_WATERMARK_HEADER, iso(mark or NO_WATERMARK).encode())]
    # An order's trace context goes on with it: its own, or the batch's when it came without one.
    batch_trace = tracing.ambient_headers() or []
    stamped = stamp + batch_trace
    product_ids = {e.value.product_id for e in envelopes}
    catalog = {
        row[0]: row
        for row in Product.objects.filter(product_id__in=product_ids).values_list(
            "product_id", "name", "category", "deleted_at"
        )
    }
    now = timezone.now()
    target = topic_name("processed_orders")
    outcome = BatchOutcome()
    for envelope in envelopes:
        order: Order = envelope.value
        entry = catalog.get(order.product_id)
        if entry is None:
            outcome.rejected.append(_product_rejection(
                envelope, order.product_id, f"unknown product {order.product_id!r}: not in the catalog",
                "known_product",
            ))
            continue
        _pid, name, category, deleted_at = entry
        if deleted_at is not None:
            outcome.rejected.append(_product_rejection(
                envelope, order.product_id,
                f"product {order.product_id!r} was deleted from the catalog at {iso(deleted_at)}",
                "active_product",
            ))
            continue
        outcome.outbound.append(Outbound(
            topic=target,
            value=enrich_order(order, product_name=name, category=category, processed_at=now),
            # Keyed by order, not product: 5 products over 3 partitions would leave
            # a partition with one product. Windows merge by deltas, so any key works.
            key=order.order_id,
            headers=stamp + tracing.forward_headers(envelope.headers, batch_trace) if envelope.headers else stamped,
        ))
    outcome.applied = len(outcome.outbound)
    outcome.after_publish.append(partial(
        orders_watermark_seen, group=group, seen=_newest_per_partition(envelopes, lambda e: e.value.timestamp)))
    return outcome


def decode_processed_order(envelope: Envelope) -> ProcessedOrderIn:
    plain = plain_processed_order(envelope.raw)
    if plain is not None:
        order, name, category, processed_at = plain
        mark, trace_id = _upstream_mark(envelope)
        return ProcessedOrderIn(order=order, product_name=name, category=category, processed_at=processed_at,
                                upstream_mark=mark, trace_id=trace_id)
    return decode_processed_order_fully(envelope)


def decode_processed_order_fully(envelope: Envelope) -> ProcessedOrderIn:
    """Every rule, every error named: what `wire.plain_processed_order` leaves undecided."""
    data = decode_json_object(envelope.raw)
    processed_at = data.get("processed_at")
    name = plain_text(data.get("product_name"), 255)
    category = data.get("category")
    category = "" if category is None or category == "" else plain_text(category, 120)
    if name is not None and category is not None and category == data.get("category", ""):
        order = validate_order(data)  # the common case: the enrichment is plain text
    else:
        check = OrderChecker(data)
        name = check.identifier("product_name", max_length=255)
        category = check.string("category", max_length=120, required=False) or ""
        try:
            order = validate_order(data)
        except MessageRejected as exc:
            check.errors.extend(exc.errors)
        check.done()
    when = None
    if processed_at is not None:
        try:
            when = parse_timestamp(processed_at)
        except ValueError:
            pass  # informational only; the window does not depend on it
    if when is None:
        when = timezone.now()
    mark, trace_id = _upstream_mark(envelope)
    return ProcessedOrderIn(order=order, product_name=name or "", category=category, processed_at=when,
                            upstream_mark=mark, trace_id=trace_id)


def _upstream_mark(envelope: Envelope) -> tuple[datetime | None, str | None]:
    """The watermark `orders` stamped on the message (None when there is none, or it is
    not a timestamp: a processed order from another client, whose own time counts), and
    the trace id of the context it carried (None without a valid one)."""
    mark = trace_id = None
    for name, value in envelope.headers:
        if name == UPSTREAM_WATERMARK_HEADER:
            # An ISO timestamp is short; anything longer is not one (and is not cached).
            mark = _parse_mark(bytes(value)) if value and len(value) <= 64 else None
        elif name == tracing.TRACEPARENT:
            trace_id = tracing.trace_id_of(value)
    return mark, trace_id


@lru_cache(maxsize=64)
def _parse_mark(value: bytes) -> datetime | None:
    """Parsed once per distinct stamp: every order of an `orders` batch carries the same one."""
    try:
        return parse_timestamp(value.decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        return None


def _windows_outcome(final: FinalWindows, *, open_windows: list[dict] | None = None,
                     applied: int = 0) -> BatchOutcome:
    """What `order_windows` publishes after its commit: the open windows first, then the
    final ones, which are marked once the broker acknowledged them (after_publish)."""
    outcome = BatchOutcome(outbound=metrics_outbound((open_windows or []) + final.messages), applied=applied)
    if final.versions:
        outcome.after_publish.append(partial(order_windows_mark_published, versions=final.versions))
    return outcome


def handle_order_windows(envelopes: Sequence[Envelope]) -> BatchOutcome:
    """Apply the batch to the windows (moving the partitions' watermarks) and close what
    is due; after the commit, publish the windows it changed that are still open and the
    ones it closed, final.

    Closing here too, not only in the tick, closes windows as soon as the batch's
    watermark passes them; it is cheap (one indexed UPDATE). A window this batch
    changed and then closed leaves as final only: no open update may follow it. The
    final windows a batch did not close itself (left unpublished by a crash, a release
    or a rebuild) are the tick's: batches of several members never publish the same one."""
    group, upstream = consumer_group(WINDOWS_CONSUMER), consumer_group(ORDERS_CONSUMER)
    result = order_windows_apply(
        orders=[e.value for e in envelopes], group=group, upstream=upstream, trace_id=tracing.current_trace_id(),
        # A partition's watermark moves by the stamps of `orders` (handle_orders), or,
        # on a message without one, by the order's own time.
        seen=_newest_per_partition(envelopes, lambda e: e.value.upstream_mark or e.value.order.timestamp),
    )
    closed = order_windows_close(group=group, upstream=upstream)
    return _windows_outcome(
        order_windows_final_unpublished(ids=closed.ids),
        open_windows=[w for w in result.open_windows if (w["product_id"], w["window_start"]) not in closed.keys],
        applied=result.stored,
    )


def windows_tick(progress: PartitionProgress | None, *, group: str, upstream: str | None) -> BatchOutcome:
    """The idle timer of the windows of `group`: the member's progress, the close, and every
    final window not yet published, published after the commit and marked after the ack."""
    return _windows_outcome(order_windows_tick(group=group, upstream=upstream, progress=progress))


def tick_order_windows(progress: PartitionProgress) -> BatchOutcome:
    """ConsumerSpec.tick of `order_windows`: the member's progress, then the idle timer."""
    return windows_tick(progress, group=consumer_group(WINDOWS_CONSUMER), upstream=consumer_group(ORDERS_CONSUMER))


def tick_orders(progress: PartitionProgress) -> BatchOutcome:
    """ConsumerSpec.tick of `orders`: the member's progress on the group's watermark rows,
    so that a caught-up input partition stops holding the stamps back, and one whose
    member died holds them."""
    record_progress(group=consumer_group(ORDERS_CONSUMER), progress=progress)
    return BatchOutcome()
