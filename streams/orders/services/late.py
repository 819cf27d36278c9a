"""Late orders and repairs of the order windows: the operator's release of held late
orders into their final windows, and the rebuild of windows from the stored orders.

A late order (windows.py says when one is) is stored and counted on its window
(`late_count`, `late_revenue`), not added, until an operator releases it:
`order_windows_release_late` adds it exactly once, audits the correction and
republishes each corrected window as final. `order_windows_rebuild` recomputes
windows set-based (after a repair, or a changed window length); a final window
whose totals change is published again by the consumer's next tick.

Callers: the admin (release, rebuild) and the API (release), tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from confluent_kafka import KafkaException
from django.conf import settings
from django.db import connection, transaction

from console.admin_base import log_changes
from console.audit import audit_record
from streams.kafka.producer import DeliveryError, batch_ack_timeout, publish_and_wait

from ..models import ProcessedOrder, ProductWindow
from .windows import metrics_outbound, order_windows_final_unpublished, order_windows_mark_published

_ORDERS = ProcessedOrder._meta.db_table
_WINDOWS = ProductWindow._meta.db_table

# Rebuild windows from the stored orders (repairs, a changed window size): late
# orders not released stay out of the totals and in late_count. A final window
# whose totals change this way is published again (final_published_at cleared).
_REBUILD_SQL = f"""
INSERT INTO {_WINDOWS} AS w
    (product_id, product_name, window_start, window_end,
     order_count, total_revenue, avg_order_value, late_count, late_revenue, updated_at)
SELECT product_id, max(product_name), window_start, window_start + make_interval(secs => %s),
       count(*) FILTER (WHERE counted), coalesce(sum(amount) FILTER (WHERE counted), 0),
       coalesce(round(sum(amount) FILTER (WHERE counted) / nullif(count(*) FILTER (WHERE counted), 0), 2), 0),
       count(*) FILTER (WHERE NOT counted), coalesce(sum(amount) FILTER (WHERE NOT counted), 0), now()
FROM (SELECT *, NOT late OR released_at IS NOT NULL AS counted FROM {_ORDERS}) o
WHERE (%s::text IS NULL OR product_id = %s::text)
GROUP BY product_id, window_start
ON CONFLICT (product_id, window_start) DO UPDATE SET
    product_name = EXCLUDED.product_name,
    window_end = EXCLUDED.window_end,
    order_count = EXCLUDED.order_count,
    total_revenue = EXCLUDED.total_revenue,
    avg_order_value = EXCLUDED.avg_order_value,
    late_count = EXCLUDED.late_count,
    late_revenue = EXCLUDED.late_revenue,
    final_published_at = CASE WHEN (w.order_count, w.total_revenue)
                                   IS DISTINCT FROM (EXCLUDED.order_count, EXCLUDED.total_revenue)
                              THEN NULL ELSE w.final_published_at END,
    updated_at = now()
"""

# Release a window's held late orders into its totals, once: only orders still
# unreleased are marked, and only those marked here are added (a second release,
# or a concurrent one, finds none). The window is published again as final.
_RELEASE_SQL = f"""
WITH released AS (
    UPDATE {_ORDERS} o SET released_at = now(), released_by_id = %(by)s
    FROM {_WINDOWS} w
    WHERE w.id = ANY(%(ids)s::bigint[]) AND o.product_id = w.product_id AND o.window_start = w.window_start
      AND o.late AND o.released_at IS NULL
    RETURNING w.id AS window_id, o.amount
), deltas AS (
    SELECT window_id, count(*) AS n, sum(amount) AS revenue FROM released GROUP BY window_id
)
UPDATE {_WINDOWS} w SET
    order_count = w.order_count + d.n,
    total_revenue = w.total_revenue + d.revenue,
    avg_order_value = round((w.total_revenue + d.revenue) / (w.order_count + d.n), 2),
    late_count = w.late_count - d.n,
    late_revenue = w.late_revenue - d.revenue,
    final_published_at = NULL,
    updated_at = now()
FROM deltas d WHERE w.id = d.window_id
RETURNING w.id, d.n, d.revenue, w.order_count, w.total_revenue
"""


@dataclass(frozen=True)
class LateRelease:
    windows: int  # windows whose totals changed
    orders: int  # late orders released into them
    revenue: Decimal
    published: bool  # the corrected windows reached product-metrics (else the consumer publishes them)


def order_windows_release_late(*, windows: Sequence[ProductWindow], by: Any) -> LateRelease:
    """Release the held late orders of `windows` into their totals: an audited correction.

    Exactly once: an order already released is not added again, so releasing
    twice changes nothing. Each changed window gets an admin-log entry by `by` (its
    history), the release one console audit entry (the audit log), and each window
    is published again as final with its new totals (after the commit; if the
    broker is away, the consumer's next tick publishes it)."""
    ids = [w.pk for w in windows]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_RELEASE_SQL, {"ids": ids, "by": by.pk})
        changed = cursor.fetchall()
        by_id = {w.pk: w for w in windows}
        for window_id, n, revenue, count, total in changed:
            window = by_id[window_id]
            log_changes(
                user=by, objects=[window],
                message=(f"Released {n} late order(s), revenue {revenue}, into this final window: "
                                f"now {count} orders, {total} revenue (republished as final)"),
            )
        if changed:
            audit_record(by=by, action="late_orders_release", target="order-windows:" + ",".join(
                str(row[0]) for row in changed[:20]), outcome="succeeded", detail={
                "windows": [{"id": w_id, "product_id": by_id[w_id].product_id,
                             "window_start": by_id[w_id].window_start.isoformat(), "released": n,
                             "revenue": str(revenue), "count": count, "total": str(total)}
                            for w_id, n, revenue, count, total in changed]})
    published = _republish(ids=[row[0] for row in changed])
    return LateRelease(windows=len(changed), orders=sum(row[1] for row in changed),
                       revenue=sum((row[2] for row in changed), Decimal("0")), published=published)


def _republish(*, ids: Sequence[int]) -> bool:
    """Publish the corrected final windows `ids` from this request thread and mark them
    once the broker acknowledged them, as the consumer's outcome does: read in a
    transaction, published after its commit, then marked. False when the broker did not
    acknowledge: they stay unpublished, and the consumer's next tick publishes them."""
    if not ids:
        return True
    with transaction.atomic():
        final = order_windows_final_unpublished(ids=ids)
    if not final.messages:  # a consumer's tick is publishing them right now
        return True
    try:
        publish_and_wait(metrics_outbound(final.messages), timeout=batch_ack_timeout())
    except (DeliveryError, KafkaException):
        return False
    with transaction.atomic():
        order_windows_mark_published(versions=final.versions)
    return True


def order_windows_rebuild(*, product_id: str | None = None) -> int:
    """Recompute windows (all, or one product's) from the stored orders. Returns rows upserted."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_REBUILD_SQL, [settings.ORDERS_WINDOW_SECONDS, product_id, product_id])
        return cursor.rowcount
