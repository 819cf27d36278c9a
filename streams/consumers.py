"""Consumers owned by the streams app (discovered by the registry)."""

from .kafka.registry import ConsumerSpec, register
from . import telemetry

register(ConsumerSpec(
    name="telemetry",
    topics=("metrics", "workorders"),
    decode=telemetry.decode,
    handle_batch=telemetry.handle_batch,
    description="Machine metrics and work orders -> PostgreSQL (idempotent upserts).",
))

# Order analytics (seed 002) and sensor/activity streams (seed 003).
from . import orders, readings  # noqa: E402

register(ConsumerSpec(
    name="orders",
    topics=("orders",),
    decode=orders.decode_order,
    handle_batch=orders.handle_orders,
    dead_letter_topic="orders_dlq",
    description="Orders -> validated, enriched with the catalog -> processed-orders.",
))
register(ConsumerSpec(
    name="order_windows",
    topics=("processed_orders",),
    decode=orders.decode_processed_order,
    handle_batch=orders.handle_order_windows,
    dead_letter_topic="orders_dlq",
    description="Processed orders -> per-product tumbling windows (exactly once) -> product-metrics.",
))
register(ConsumerSpec(
    name="standardize",
    topics=("sensor_data", "user_activity"),
    decode=readings.decode_raw,
    handle_batch=readings.handle_standardize,
    description="Sensor readings and user activity -> one standard shape with status -> processed_data.",
))
register(ConsumerSpec(
    name="processed_sink",
    topics=("processed_data",),
    decode=readings.decode_processed,
    handle_batch=readings.handle_sink,
    description="processed_data -> sensor/activity tables (idempotent), exported as CSV.",
))
