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

from . import products  # noqa: E402

register(ConsumerSpec(
    name="products",
    topics=("product_registrations",),
    decode=products.decode,
    handle_batch=products.handle_batch,
    description="Product registrations (cadastro-produtos) -> catalog upsert -> produtos-persistidos.",
))
