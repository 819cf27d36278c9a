"""Order analytics rows (seed 002): stored processed orders and per-product windows."""

from __future__ import annotations

from django.db import models


class ProcessedOrder(models.Model):
    """One enriched order, stored once per `order_id`.

    The unique `order_id` is what makes the window counts exactly-once: a
    replayed or re-driven order is not inserted again, so it is not counted
    again.
    """

    order_id = models.CharField(max_length=128, unique=True)
    user_id = models.CharField(max_length=128)
    product_id = models.CharField(max_length=64)
    product_name = models.CharField(max_length=255)
    category = models.CharField(max_length=120, blank=True)
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    ordered_at = models.DateTimeField(help_text="The order's own timestamp (event time).")
    window_start = models.DateTimeField(help_text="Start of the tumbling window the order falls in.")
    processed_at = models.DateTimeField(help_text="When the `orders` consumer enriched it.")
    stored_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["product_id", "window_start"], name="processedorder_window"),
            models.Index(fields=["ordered_at"], name="processedorder_ordered_at"),
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
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["product_id", "window_start"], name="productwindow_natural_key"),
        ]
        indexes = [models.Index(fields=["window_start"], name="productwindow_start")]
        ordering = ["-window_start", "product_id"]

    def __str__(self) -> str:
        return f"{self.product_id} {self.window_start:%Y-%m-%d %H:%M}: {self.order_count} orders"
