from __future__ import annotations

import math
import random
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.core.management.base import BaseCommand

from streams.kafka.producer import Outbound, produce_and_wait
from streams.kafka.topics import topic_name


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


def sensor_file(now: int, rng: random.Random, *, rows: int = 500) -> str:
    """A sensor CSV in the ingestion contract's shape; one in five has a broken row."""
    devices = ["b8:27:eb:bf:9d:51", "00:0f:00:70:91:0a", "1c:bf:ce:15:ec:4d"]
    lines = ['"ts","device","co","humidity","light","lpg","motion","smoke","temp"']
    for i in range(rows):
        lines.append(",".join(f'"{v}"' for v in (
            f"{now - rows + i + rng.random():.6f}", rng.choice(devices), f"{rng.uniform(0.002, 0.006):.6f}",
            f"{rng.uniform(40, 80):.1f}", rng.choice(["True", "False"]), f"{rng.uniform(0.005, 0.009):.6f}",
            rng.choice(["True", "False"]), f"{rng.uniform(0.01, 0.03):.6f}", f"{rng.uniform(18, 28):.1f}",
        )))
    if rng.random() < 0.2:
        lines.append('"","","","","","","","","-100.0"')
    return "\n".join(lines) + "\n"


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


class Command(BaseCommand):
    help = "Publish realistic demo events to every pipeline's input topics (for `make run`)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--forever", action="store_true", help="Keep publishing until SIGTERM/SIGINT.")
        parser.add_argument("--interval", type=float, default=5.0, help="Seconds between rounds (default 5).")
        parser.add_argument("--rounds", type=int, default=1, help="Rounds to publish without --forever (default 1).")
        parser.add_argument("--seed", type=int, default=None, help="Random seed, for repeatable demos.")
        parser.add_argument("--file-every", type=int, default=12,
                            help="Drop a demo sensor CSV into the inbox every N rounds (0: never; default 12).")

    def handle(self, *args, forever: bool, interval: float, rounds: int, seed: int | None, file_every: int, **options) -> None:
        rng = random.Random(seed)
        stopping = {"flag": False}

        def stop(*_):
            stopping["flag"] = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        from streams.orders.demo import catalog_seed_demo

        catalog_seed_demo()  # orders for unknown products would all be dead-lettered
        generators = [telemetry_events, order_and_reading_events, product_registration_events]
        done = 0
        total = 0
        while not stopping["flag"] and (forever or done < rounds):
            now = int(time.time())
            batch = [event for generate in generators for event in generate(now, rng)]
            try:
                if file_every and done % file_every == 0:
                    drop_sensor_file(now, rng)
                total += produce_and_wait(batch, timeout=30)
            except Exception as exc:  # keep the demo alive while Kafka restarts
                self.stderr.write(f"demo round failed: {exc}")
            done += 1
            if forever or done < rounds:
                deadline = time.monotonic() + interval
                while not stopping["flag"] and time.monotonic() < deadline:
                    time.sleep(0.2)
        self.stdout.write(self.style.SUCCESS(f"published {total} demo events in {done} round(s)"))
