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
