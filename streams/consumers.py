"""The stream pipelines' consumers, registered by name for `run_consumer NAME`.

A map of the consumers this app runs: each registration names the pipeline
module whose steps decode and handle a batch (`streams/<pipeline>/consumers.py`),
and declares what the consumer writes and produces (the pipeline map draws it;
tests/console/test_map_declared.py holds it to that).
Every app registers its consumers this way, in its own `consumers.py` (ingest's
is ingest/consumers.py). The runtime (streams/kafka/runtime.py) knows only the
ConsumerSpec. Discovered by the registry (streams.kafka.registry).
"""

from .activity import consumers as activity
from .kafka.registry import ConsumerSpec, Pipeline, register, register_pipeline
from .orders import consumers as orders
from .products import consumers as products
from .telemetry import consumers as telemetry

# What the operations pages show each consumer under (ConsumerSpec.pipeline).
TELEMETRY = Pipeline("telemetry", "Telemetry", "admin:streams_machinemetric_changelist", order=20)
PRODUCTS = Pipeline("products", "Products", "admin:streams_product_changelist", order=40)
ORDERS = Pipeline("orders", "Orders", "admin:streams_productwindow_changelist", order=50)
SENSORS = Pipeline("sensors", "Sensors / activity", "admin:streams_sensorreading_changelist", order=60)
# The correlation report has no consumer: its runs are Celery tasks (report/tasks.py).
register_pipeline(Pipeline("report", "Correlation report", "admin:streams_correlationreport_changelist", order=30))

register(ConsumerSpec(
    name="telemetry",
    pipeline=TELEMETRY,
    topics=("metrics", "workorders"),
    decode=telemetry.decode,
    handle_batch=telemetry.handle_batch,
    offsets_in_db=True,
    writes=("streams.MachineMetric", "streams.WorkOrderReading", "streams.TelemetryOverwrite"),
    description="Machine metrics and work orders -> PostgreSQL (idempotent upserts).",
))
register(ConsumerSpec(
    name="orders",
    pipeline=ORDERS,
    topics=("orders",),
    decode=orders.decode_order,
    handle_batch=orders.handle_orders,
    tick=orders.tick_orders,
    dead_letter_topic="orders_dlq",
    writes=("streams.OrderWatermark",),
    produces=("processed_orders",),
    description="Orders -> validated, enriched with the catalog -> processed-orders.",
))
register(ConsumerSpec(
    name="order_windows",
    pipeline=ORDERS,
    topics=("processed_orders",),
    decode=orders.decode_processed_order,
    handle_batch=orders.handle_order_windows,
    tick=orders.tick_order_windows,
    dead_letter_topic="orders_dlq",
    offsets_in_db=True,
    one_group_per_database=True,  # the windows and their closing are shared by every group
    writes=("streams.ProcessedOrder", "streams.ProductWindow", "streams.OrderWatermark"),
    produces=("product_metrics",),
    description="Processed orders -> per-product tumbling windows (exactly once, event time) -> product-metrics.",
))
register(ConsumerSpec(
    name="standardize",
    pipeline=SENSORS,
    topics=("sensor_data", "user_activity"),
    decode=activity.decode_raw,
    handle_batch=activity.handle_standardize,
    produces=("processed_data",),
    description="Sensor readings and user activity -> one standard shape with status -> processed_data.",
))
register(ConsumerSpec(
    name="processed_sink",
    pipeline=SENSORS,
    topics=("processed_data",),
    decode=activity.decode_processed,
    handle_batch=activity.handle_sink,
    offsets_in_db=True,
    writes=("streams.SensorReading", "streams.ActivityEvent"),
    description="processed_data -> sensor/activity tables (idempotent), exported as CSV.",
))
register(ConsumerSpec(
    name="products",
    pipeline=PRODUCTS,
    topics=("product_registrations",),
    decode=products.decode,
    handle_batch=products.handle_batch,
    writes=("streams.Product",),
    produces=("products_persisted",),
    description="Product registrations (cadastro-produtos) -> catalog upsert -> produtos-persistidos.",
))
