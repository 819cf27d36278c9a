"""Order analytics rows (seed 002): stored processed orders and per-product windows."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ProcessedOrder(models.Model):
    """One enriched order, stored once per `order_id`.

    The unique `order_id` is what makes the window counts exactly-once: a
    replayed or re-driven order is not inserted again, so it is not counted
    again.
    """

    # The primary key, with no surrogate id beside it: every stored order paid for
    # the id's sequence and its index (163 against about 200 ms per 20,000 orders).
    order_id = models.CharField(max_length=128, primary_key=True)
    user_id = models.CharField(max_length=128)
    product_id = models.CharField(max_length=64)
    product_name = models.CharField(max_length=255)
    category = models.CharField(max_length=120, blank=True)
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    ordered_at = models.DateTimeField(help_text="The order's own timestamp (event time).")
    window_start = models.DateTimeField(help_text="Start of the tumbling window the order falls in.")
    processed_at = models.DateTimeField(help_text="When the `orders` consumer enriched it.")
    stored_at = models.DateTimeField(auto_now_add=True)
    late = models.BooleanField(
        default=False, db_default=False,
        help_text="Arrived when its window was already final: stored and counted on the window as late, "
                  "not added to its totals until an operator releases it.",
    )
    released_at = models.DateTimeField(null=True, blank=True,
                                       help_text="When an operator released this late order into its window.")
    # No constraint in the database: its deferred check was queued and fired for every
    # order stored (16 ms per 20,000 at commit), though only a released one has an
    # operator. Deleting a user still clears it (Django's SET_NULL runs in the ORM).
    released_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+", db_index=False, db_constraint=False)
    # Not indexed: an index would cost every order stored; the trace page finds an order
    # by its id and reaches its trace from there (console/ops/trace.py).
    trace_id = models.UUIDField(null=True, blank=True, help_text="The W3C trace id of the context the order "
                                "carried (its own, or its first hop's batch when its client sent none).")

    class Meta:
        indexes = [
            # Only released orders have an operator: the index skips the rest (every order
            # stored would add a NULL entry to a full one).
            models.Index(fields=["released_by"], condition=models.Q(released_by__isnull=False),
                         name="processedorder_released_by"),
            models.Index(fields=["product_id", "window_start"], name="processedorder_window"),
            models.Index(fields=["product_id", "window_start"], condition=models.Q(late=True, released_at=None),
                         name="processedorder_held_late"),
            models.Index(fields=["ordered_at"], name="processedorder_ordered_at"),
            # What the pages filter on (migration 0018; docs/streams.md): late orders are rare, so
            # theirs is partial and costs nothing for the others; a user's orders, newest first
            # (the API's `?user_id=`, the admin's search), need their own B-tree: the one index
            # entry per order this adds is the price of a lookup that does not read every order.
            models.Index(fields=["ordered_at"], condition=models.Q(late=True), name="processedorder_late"),
            models.Index(fields=["user_id", "ordered_at"], name="processedorder_user"),
        ]
        ordering = ["-ordered_at", "order_id"]

    def __str__(self) -> str:
        return f"{self.order_id} {self.product_id} {self.amount}"


class ProductWindow(models.Model):
    """Orders of one product in one tumbling window (seed 002 `product-metrics`)."""

    product_id = models.CharField(max_length=64)
    product_name = models.CharField(max_length=255)
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    order_count = models.PositiveIntegerField()
    total_revenue = models.DecimalField(max_digits=18, decimal_places=2)
    avg_order_value = models.DecimalField(max_digits=14, decimal_places=2)
    final = models.BooleanField(
        default=False, db_default=False,
        help_text="The watermark (or, on a quiet stream, the wall clock) passed the window's end: "
                  "its totals change only by an operator's release of late orders.",
    )
    finalized_at = models.DateTimeField(null=True, blank=True)
    final_published_at = models.DateTimeField(
        null=True, blank=True,
        help_text="When the broker acknowledged the window's final state on product-metrics "
                  "(cleared by a release, which republishes it).",
    )
    late_count = models.PositiveIntegerField(default=0, db_default=0,
                                             help_text="Late orders held out of the totals (not released).")
    late_revenue = models.DecimalField(max_digits=18, decimal_places=2, default=0, db_default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["product_id", "window_start"], name="productwindow_natural_key"),
        ]
        indexes = [
            models.Index(fields=["window_start"], name="productwindow_start"),
            # What the close step looks for: open windows by end, final ones not yet published.
            models.Index(fields=["window_end"], condition=models.Q(final=False), name="productwindow_open"),
            models.Index(fields=["window_start"], condition=models.Q(final=True, final_published_at=None),
                         name="productwindow_unpublished"),
        ]
        ordering = ["-window_start", "product_id"]
        permissions = [("release_late_orders", "Can release late orders into their final window")]

    def __str__(self) -> str:
        return f"{self.product_id} {self.window_start:%Y-%m-%d %H:%M}: {self.order_count} orders"


class OrderWatermark(models.Model):
    """How far event time has got in one partition, for one consumer group.

    Written in each batch's transaction (set-based), so it survives a crash or
    a rebalance together with the windows, and by each member's tick (whether
    its partitions are applied up to their end). The group's watermark is the
    lowest `max_event_at` of its partitions that are not idle, minus
    ORDERS_WINDOW_GRACE_SECONDS; a partition is idle only when it has been
    caught up for ORDERS_IDLE_CLOSE_SECONDS and its member still says so
    (services.py).
    """

    group_id = models.CharField(max_length=255)
    topic = models.CharField(max_length=255)
    partition = models.IntegerField()
    max_event_at = models.DateTimeField(null=True, blank=True,
                                        help_text="The newest order time seen in this partition (empty: none yet).")
    seen_at = models.DateTimeField(null=True, blank=True,
                                   help_text="Wall clock of the last batch with a message from this partition.")
    caught_up_at = models.DateTimeField(
        null=True, blank=True, help_text="Last time the member owning this partition found it applied up to its end.")
    idle_since = models.DateTimeField(
        null=True, blank=True, help_text="Caught up, with no message, since then (empty: has a backlog or a batch).")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["group_id", "topic", "partition"], name="orderwatermark_partition"),
        ]
        ordering = ["group_id", "topic", "partition"]

    def __str__(self) -> str:
        newest = f"{self.max_event_at:%Y-%m-%d %H:%M:%S}" if self.max_event_at else "none yet"
        return f"{self.group_id} {self.topic}[{self.partition}] {newest}"
