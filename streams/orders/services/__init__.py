"""What the two order consumers do to the data, and the operators' corrections (seed 002),
one module per responsibility:

    rules.py      what a valid order is (`validate_order`, `OrderChecker`) and the
                  `processed-orders` message `orders` makes of it (`enrich_order`)
    watermark.py  event time: the watermark per (group, partition), the members'
                  progress, the idle rule, and the stamp `orders` puts on its output
    windows.py    the windows, exactly once: one statement applies a batch; closing,
                  and the final windows selected for publishing and marked after the ack
    late.py       late orders released into their final windows (audited), and windows
                  rebuilt from the stored orders

Two consumers use them (consumers.py, which holds the Kafka side: topics, headers,
the outcome that publishes open and final windows after the commit):

* `orders` reads `orders`, validates each order (ids, amount, timestamp;
  product known and not deleted, looked up once per batch), enriches it with
  the product's name and category and publishes it to `processed-orders`
  keyed by order id. Rejected orders go to `orders-dlq` and quarantine.
* `order_windows` reads `processed-orders` and keeps 1-minute tumbling windows
  per product, in event time (docs/streams.md). A window is final once the
  group's watermark passes its end, or, when no partition is active, once the
  wall clock passes its end + grace + idle close. An order for a final window
  is late: stored, counted on the window, not added, until an operator releases
  it (`order_windows_release_late`, audited, exactly once). Open windows a batch
  changed are published after the commit with their absolute values and
  `"final": false`; a final window is published once more, `"final": true`, and
  marked after the broker's ack.

Callers (consumers.py, wire.py, the admin, the API, tests) import the names below
from `streams.orders.services`, not from the modules.
"""

from .late import LateRelease, order_windows_rebuild, order_windows_release_late
from .rules import (
    CENT,
    MAX_AMOUNT,
    Order,
    OrderChecker,
    ProcessedOrderIn,
    enrich_order,
    plain_text,
    validate_order,
)
from .watermark import (
    PartitionSeen,
    orders_stamp,
    orders_watermark_seen,
    record_progress,
    report_fresh_seconds,
)
from .windows import (
    ClosedWindows,
    FinalWindows,
    WindowsApplied,
    metrics_outbound,
    order_windows_apply,
    order_windows_close,
    order_windows_final_unpublished,
    order_windows_mark_published,
    order_windows_tick,
    window_message,
)

__all__ = [
    "CENT", "MAX_AMOUNT", "ClosedWindows", "FinalWindows", "LateRelease", "Order", "OrderChecker",
    "PartitionSeen", "ProcessedOrderIn", "WindowsApplied", "enrich_order", "metrics_outbound",
    "order_windows_apply", "order_windows_close", "order_windows_final_unpublished",
    "order_windows_mark_published", "order_windows_rebuild", "order_windows_release_late",
    "order_windows_tick", "orders_stamp", "orders_watermark_seen", "plain_text", "record_progress",
    "report_fresh_seconds", "validate_order", "window_message",
]
