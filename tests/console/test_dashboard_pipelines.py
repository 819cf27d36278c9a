"""The dashboards' pipelines come from the consumer registry (console/ops/dashboard.py
`pipelines_shown`, streams.kafka.registry `pipelines`): pure, no service."""

from __future__ import annotations

import pytest

from console.ops.dashboard import OTHER, pipelines_shown
from streams.kafka import registry
from streams.kafka.registry import BatchOutcome, ConsumerSpec, Pipeline, register_pipeline


def test_each_pipeline_in_its_place_with_its_consumers_in_the_order_data_flows():
    shown = [(pipeline.key, names) for pipeline, names in pipelines_shown().items()]
    assert shown == [
        ("files", ("files",)),
        ("telemetry", ("telemetry",)),
        ("report", ()),  # declared without a consumer: its runs are Celery tasks
        ("products", ("products",)),
        ("orders", ("orders", "order_windows")),
        ("sensors", ("standardize", "processed_sink")),
    ]


def test_a_consumer_registered_without_a_pipeline_is_listed_under_other_consumers(monkeypatch):
    registry.discover()
    spare = ConsumerSpec(name="spare", topics=("metrics",), decode=lambda envelope: None,
                         handle_batch=lambda envelopes: BatchOutcome())
    monkeypatch.setitem(registry._registry, "spare", spare)
    shown = pipelines_shown()
    assert shown[OTHER] == ("spare",) and list(shown)[-1] == OTHER
    monkeypatch.delitem(registry._registry, "spare")
    assert OTHER not in pipelines_shown()


def test_a_pipeline_declared_twice_differently_is_refused(monkeypatch):
    registry.discover()
    monkeypatch.setattr(registry, "_pipelines", dict(registry._pipelines))
    orders = next(p for p in registry._pipelines.values() if p.key == "orders")
    assert register_pipeline(Pipeline(orders.key, orders.label, orders.admin_url, orders.order)) == orders
    with pytest.raises(ValueError, match="pipeline 'orders' is declared twice"):
        register_pipeline(Pipeline("orders", "Orders, again", "admin:streams_processedorder_changelist"))
