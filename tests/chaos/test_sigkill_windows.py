"""The two order consumers SIGKILLed 10 times each mid-stream, with windows closing as it goes:
every window's totals exact, every final window published as final, once (one content), and
never updated as open after that.

The orders' event times rise with the load, so the watermark finalizes windows while the
consumers are being killed; the last ones close on the idle timer once the stream is quiet.
Chaos tier (CHAOS=1, `make test-chaos`): it takes a minute or two. It stops no service, so
it may also run on its own under the suite lock: `CHAOS=1 CHAOS_LOCK=/tmp/suite.lock flock
/tmp/suite.lock .venv/bin/python -m pytest tests/chaos/test_sigkill_windows.py`.
"""

from __future__ import annotations

import json
import random
import subprocess
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from streams.kafka.producer import Outbound
from streams.models import ProcessedOrder, ProductWindow
from streams.orders.demo import catalog_seed_demo
from tests.conftest import wait_until
from tests.streams.orders.test_pipeline import expected_windows

from .conftest import secs
from .helpers import caught_up, kill_under_load

pytestmark = [pytest.mark.chaos, pytest.mark.kafka_partitions(2), pytest.mark.timeout(600)]

KILLS = 10
UPTIME = (0.5, 3.0)  # seconds a consumer runs (after it says it started) before it is killed
N_ORDERS = 6000
WINDOWS = 12  # minutes of event time the orders cover, in order
CHUNKS = 24  # produced in this many slices, oldest first, while the kills go on
GRACE, IDLE = 20, 20  # seconds


def orders(rng: random.Random, start: datetime) -> list[dict]:
    """N_ORDERS valid orders with event times rising over WINDOWS minutes from `start`."""
    span = WINDOWS * 60
    return [{"order_id": f"order-kill-{i}", "user_id": f"user-{rng.randint(1, 50)}",
             "product_id": f"prod-{rng.randint(1, 5)}", "amount": rng.randint(1000, 50000) / 100,
             "timestamp": (start + timedelta(seconds=span * i / N_ORDERS)).isoformat()}
            for i in range(N_ORDERS)]


def test_sigkill_the_order_consumers_final_windows_once_and_totals_exact(kafka, processes, figures):
    catalog_seed_demo(count=5)
    rng = random.Random(12)
    # Two hours ago, on a minute: the idle timer's wall-clock rule can close every window at the end.
    start = (datetime.now(UTC) - timedelta(hours=2)).replace(second=0, microsecond=0)
    events = orders(rng, start)
    env = {"KAFKA_CLIENT_CONFIG": "session.timeout.ms=6000,heartbeat.interval.ms=1000",
           "CONSUMER_BATCH_TIME_MS": "100", "CONSUMER_TICK_SECONDS": "1",
           "ORDERS_WINDOW_GRACE_SECONDS": str(GRACE), "ORDERS_IDLE_CLOSE_SECONDS": str(IDLE)}
    names = ("orders", "order_windows")

    def start_consumer(name: str) -> subprocess.Popen:
        return processes.consumer(name, "--batch-size", "200", **env)

    slices = [[Outbound(kafka.name("orders"), e, key=e["product_id"])
               for e in events[c * N_ORDERS // CHUNKS:(c + 1) * N_ORDERS // CHUNKS]] for c in range(CHUNKS)]
    run = kill_under_load(processes=processes, start=start_consumer,
                          started=lambda _name, log: "consumer_started" in log, names=names, slices=slices, pause=1.5, kills=KILLS, uptime=UPTIME)
    current, began, kills_done = run.current, run.began, run.kills_done

    expected = expected_windows(events)

    def windows() -> dict[tuple[str, int], ProductWindow]:
        return {(w.product_id, int(w.window_start.timestamp())): w for w in ProductWindow.objects.all()}

    def settled() -> bool:  # every order stored and counted, every window final and its final state acknowledged
        stored = windows()
        return (ProcessedOrder.objects.count() == N_ORDERS and stored.keys() == expected.keys()
                and all(w.final and w.final_published_at for w in stored.values())
                and {k: (w.order_count + w.late_count, w.total_revenue + w.late_revenue) for k, w in stored.items()}
                == expected)

    wait_until(settled, timeout=180, interval=1, message="every window final, published, with exact totals")
    for name, logical in (("orders", "orders"), ("order_windows", "processed_orders")):
        wait_until(lambda: caught_up(kafka, f"{kafka.group_prefix}-{name}", [logical]), timeout=60,
                   message=f"{name} to commit everything")
    settled_at = time.monotonic()
    for name in names:
        assert current[name].poll() is None, f"{name} exited:\n{processes.log(current[name])[-3000:]}"

    # product-metrics, in order per window (keyed by product: one partition per product).
    published = [json.loads(m.value()) for m in kafka.read("product_metrics",
                                                           expected=kafka.end_offsets("product_metrics"))]
    per_window: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for m in published:
        per_window[(m["product_id"], m["window_start"])].append(m)
    stored = windows()
    repeats = 0
    for key, w in stored.items():
        messages = per_window[key]
        finals = [m for m in messages if m["final"]]
        assert finals, f"window {key} was never published as final"
        first_final = messages.index(finals[0])
        assert all(m["final"] for m in messages[first_final:]), f"window {key} updated as open after its final"
        contents = {json.dumps(m, sort_keys=True) for m in finals}
        assert len(contents) == 1, f"window {key} published final with different contents: {contents}"
        assert (finals[0]["order_count"], Decimal(str(finals[0]["total_revenue"]))) == (w.order_count,
                                                                                        w.total_revenue)
        repeats += len(finals) - 1
    late = sum(w.late_count for w in stored.values())
    figures.record(
        "sigkill-windows", kills=sum(len(k) for k in run.kills.values()),
        orders=f"{ProcessedOrder.objects.count()}/{N_ORDERS}",
        windows=f"{len(stored)}/{len(expected)}", final_messages=sum(len([m for m in v if m["final"]])
                                                                    for v in per_window.values()),
        final_repeats=repeats, late_orders=late, kill_phase=secs(kills_done - began),
        settled_after_kills=secs(settled_at - kills_done),
    )
    # A repeat is the documented at-least-once caveat (a kill between the broker's ack and the
    # commit): the same content again. The totals are exact either way.
    assert len(stored) == len(expected)
