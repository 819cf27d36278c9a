"""The live demo traffic `make run` feeds the pipelines with (`manage.py demo_traffic`):
one round of events for every pipeline's input topics, and now and then a sensor CSV
dropped into the inbox.

A round (`traffic_round`) publishes machine metrics and work orders, orders (a few
invalid, now and then one minutes late), sensor readings and user activity, and
sometimes a product registration; the orders, readings and activity are the
pipelines' own demo generators (streams/orders/demo.py, streams/activity/demo.py),
the CSV rows sensors.py's, like the sample files'.
"""

from __future__ import annotations

import io
import math
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from streams.kafka.producer import Outbound, batch_ack_timeout, produce_and_wait
from streams.kafka.registry import Source, register_source
from streams.kafka.topics import topic_name

from .sensors import DEVICES, sensor_csv_write, sensor_row

# What the demo puts into the pipelines (the pipeline map, console/ops/topology.py); its
# CSV files reach file_events through the inbox watcher.
register_source(Source("demo_traffic", "generator", "demo_traffic", writes=("streams.Product",), produces=(
    "metrics", "workorders", "orders", "sensor_data", "user_activity", "product_registrations")))


def telemetry_events(now: int, rng: random.Random) -> list[Outbound]:
    """Twenty machine parameters and two products' cumulative production."""
    events = [
        Outbound(topic_name("metrics"), {
            "id": pid, "val": round(500 + 100 * math.sin(now / 600 + pid) + rng.gauss(0, 10), 3), "time": now,
        }, key=str(pid))
        for pid in range(1, 21)
    ]
    events += [
        Outbound(topic_name("workorders"), {
            "time": now, "product": product, "production": round((now % 86400) / 10 * (1 + product), 2),
        }, key=str(product))
        for product in (0, 1)
    ]
    return events


# Rounds that also carry one straggler: an order from STRAGGLER_MINUTES ago, whose window
# is final by then, so it is held as late on it (the "Late count" column, the chart's
# tooltip) for an operator to release.
STRAGGLER_SHARE = 0.1
STRAGGLER_MINUTES = 3


def order_and_reading_events(now: int, rng: random.Random) -> list[Outbound]:
    """Orders (a few invalid, to show the dead-letter path; now and then one minutes late,
    to show late orders), sensor readings, user activity."""
    from streams.orders.demo import order_events
    from streams.activity.demo import activity_events, sensor_events

    orders = order_events(rng.randint(10, 30), invalid_share=0.05, rng=rng)
    if rng.random() < STRAGGLER_SHARE:
        late = datetime.fromtimestamp(now, tz=UTC) - timedelta(minutes=STRAGGLER_MINUTES)
        orders += order_events(1, now=late, rng=rng)
    events = [Outbound(topic_name("orders"), order, key=str(order.get("product_id") or "")) for order in orders]
    events += [Outbound(topic_name("sensor_data"), e, key=e["sensor_id"]) for e in sensor_events(5, rng=rng)]
    events += [Outbound(topic_name("user_activity"), e, key=str(e["user_id"])) for e in activity_events(5, rng=rng)]
    return events


def product_registration_events(now: int, rng: random.Random) -> list[Outbound]:
    """Now and then a product registration (seed 004 payload), updating prod-1..prod-5."""
    if rng.random() > 0.2:
        return []
    number = rng.randint(1, 5)
    names = {1: "Laptop", 2: "Phone", 3: "Tablet", 4: "Monitor", 5: "Keyboard"}
    return [Outbound(topic_name("product_registrations"), {
        "productId": f"prod-{number}",
        "productName": names[number],
        "productDescription": f"{names[number]} (demo catalog)",
        "price": round(rng.uniform(50, 1500), 2),
        "currency": "EUR",
        "stockQuantity": rng.randint(0, 500),
        "category": "Electronics",
    }, key=f"prod-{number}")]


# The broken row one demo file in five ends with: no time, no device, a temperature out of range.
BROKEN_ROW = ["", "", "", "", "", "", "", "", "-100.0"]


def sensor_file(now: int, rng: random.Random, *, rows: int = 500) -> str:
    """A sensor CSV of the last `rows` seconds; one in five has a broken row."""
    lines = [sensor_row(rng, round(now - rows + i + rng.random(), 6), rng.choice(DEVICES)) for i in range(rows)]
    if rng.random() < 0.2:
        lines.append(BROKEN_ROW)
    out = io.StringIO()
    sensor_csv_write(out, lines)
    return out.getvalue()


def drop_sensor_file(now: int, rng: random.Random) -> None:
    """Write a demo CSV into the inbox under a temporary name, then rename it
    (how writers should deliver files: the watcher ignores `.part` names)."""
    from django.conf import settings

    inbox = Path(settings.INGEST_INBOX_DIR)
    inbox.mkdir(parents=True, exist_ok=True)
    final = inbox / f"demo-{now}.csv"
    partial = final.with_suffix(".csv.part")
    partial.write_text(sensor_file(now, rng))
    partial.rename(final)


GENERATORS = (telemetry_events, order_and_reading_events, product_registration_events)


def traffic_prepare() -> None:
    """The demo catalog: orders for unknown products would all be dead-lettered."""
    from streams.orders.demo import catalog_seed_demo

    catalog_seed_demo()


def traffic_round(*, now: int, rng: random.Random, drop_file: bool) -> int:
    """One round: a sensor file dropped into the inbox first when `drop_file`, then every
    generator's events published, waiting for the broker's acks. Returns the events published."""
    batch = [event for generate in GENERATORS for event in generate(now, rng)]
    if drop_file:
        drop_sensor_file(now, rng)
    return produce_and_wait(batch, timeout=batch_ack_timeout())
