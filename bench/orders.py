"""Benchmark the order pipeline (seed 002): the console against bare consumers and Quix Streams.

    make bench-orders BENCH_ARGS="--orders 1000000"
    .venv/bin/python bench/orders.py [--orders 1000000] [--rate 5000] [--skip-quix] [--skip-latency]

Not a test: it prints figures for docs/streams.md ("Benchmark"). BENCH_LOG_LEVEL=INFO
shows the consumers' per-batch log lines (default WARNING). One run:

1. Generates N orders (seed shape, about --invalid-share of them invalid),
   with event times rising over --event-span seconds, for five catalog
   products of this run, and produces them once to a fresh `orders` topic,
   keyed by product. One "closing" order per partition follows, for a sixth
   product and a minute plus the grace later, so that event-time windows
   (Quix's `.final()`) can close; the checks leave that product out.
2. Baselines on that topic: a bare confluent-kafka `consume()` loop, and the
   same loop with `json.loads` of every value.
3. Console: `run_consumer orders` and `run_consumer order_windows` on that
   topic (two hops through Kafka). Rate = valid orders / (launch of the
   processes -> the moment PostgreSQL holds every valid order in its window),
   polled every 0.2 s. Every window must equal the independent computation.
   Then again with `--members` (3) static members per group (new groups and
   downstream topics, the same input, from empty tables): the scale-out line.
4. Quix Streams: bench/quix_orders.py (validate, catalog lookup join,
   1-minute tumbling windows per product, `.final()`, exactly-once) in
   .run/bench-quix/ on the same topic. Rate = valid orders / (launch of the
   process -> the moment the last final window is read, read_committed, from
   its output topic). Every window must equal the independent computation.
   Both rates include process start-up and group join; the "steady" rates
   start at the first window written.
5. Latency (console): fresh topics, the two consumers warmed up with
   --latency-window-second windows (5), then orders produced at --rate for
   --latency-seconds with event time = produce time. Per order: from its
   produce() call to the arrival, on product-metrics, of the first window
   update that counts it (windows are published after the database commit,
   so this is order -> window stored and published). Per window that closed
   within the run: from the moment it may be final (its end plus the grace,
   by the wall clock, which is event time here) to the arrival of its final
   message: the event-to-final-window latency of the last line.
6. The load average at start and end, then removes every topic, consumer
   group, row and state directory it made.

Its last line: `orders: <N> orders/s end to end, <R>x Quix Streams, <Q>x bare consume+json, p99 <L> ms at 5,000/s`
(L: event to final window), with the first-update p99 after it.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")

import django  # noqa: E402

django.setup()

from confluent_kafka import Consumer, Producer  # noqa: E402
from confluent_kafka.admin import NewTopic  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Sum  # noqa: E402

from quarantine.models import QuarantineRecord  # noqa: E402
from streams.kafka.client import client_config  # noqa: E402
from streams.kafka.heartbeat import rival_group  # noqa: E402
from streams.kafka.models import ConsumerHeartbeat, ConsumerOffset  # noqa: E402
from streams.kafka.topics import admin_client  # noqa: E402
from streams.models import ProcessedOrder, Product, ProductWindow  # noqa: E402

CONSOLE_TOPICS = ("orders", "processed_orders", "product_metrics", "orders_dlq")
QUIX_PYTHON = ROOT / ".run" / "bench-quix" / "bin" / "python"
WindowKey = tuple[str, int]  # (product_id, window_start epoch seconds)


class Run:
    """Names, products, topics and processes of one bench run, and their removal."""

    def __init__(self, partitions: int) -> None:
        self.suffix = uuid.uuid4().hex[:6]
        self.prefix = f"bench-{self.suffix}"
        self.partitions = partitions
        self.admin = admin_client()
        self.topics: list[str] = []
        self.procs: list[subprocess.Popen] = []
        self.state_dirs: list[Path] = []
        self.stop_signal = signal.SIGTERM
        self.products = [f"{self.prefix}-{i}" for i in range(1, 6)]
        self.closer = f"{self.prefix}-close"
        self.unknown = f"{self.prefix}-404"
        Product.objects.bulk_create([
            Product(product_id=pid, name=f"Bench product {pid.rsplit('-', 1)[1]}", category="Bench",
                    price=10, currency="EUR")
            for pid in [*self.products, self.closer]
        ])

    def create_topics(self, tag: str, logical: tuple[str, ...]) -> dict[str, str]:
        names = {name: f"{self.prefix}-{tag}-{name.replace('_', '-')}" for name in logical}
        for future in self.admin.create_topics([
            NewTopic(t, num_partitions=self.partitions, replication_factor=settings.KAFKA_REPLICATION_FACTOR)
            for t in names.values()
        ]).values():
            future.result()
        self.topics.extend(names.values())
        return names

    def spawn(self, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env)
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(self.stop_signal)
        for proc in self.procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()
        self.stop_signal = signal.SIGTERM

    def forget_results(self) -> None:
        """The run's windows and stored orders removed (and the tables vacuumed), for a next stage."""
        ours = [*self.products, self.closer, self.unknown]
        ProductWindow.objects.filter(product_id__in=ours).delete()
        ProcessedOrder.objects.filter(product_id__in=ours).delete()
        with connection.cursor() as cursor:
            for model in (ProcessedOrder, ProductWindow):
                cursor.execute(f"VACUUM (ANALYZE) {model._meta.db_table}")

    def cleanup(self) -> None:
        self.stop()
        # The next run starts from the same tables as this one did: without the vacuum, it would
        # insert beside this run's million dead rows (and autovacuum would clean them up during it).
        self.forget_results()
        ours = [*self.products, self.closer, self.unknown]
        Product.objects.filter(product_id__in=ours).delete()
        QuarantineRecord.objects.filter(topic__startswith=self.prefix).delete()
        ConsumerOffset.objects.filter(group__startswith=self.prefix).delete()
        ConsumerHeartbeat.objects.filter(group_id__startswith=self.prefix).delete()
        # Quix's changelog topics are named after its consumer group.
        extra = [t for t in self.admin.list_topics(timeout=10).topics if self.prefix in t]
        topics = sorted(set(self.topics) | set(extra))
        if topics:
            for future in self.admin.delete_topics(topics, operation_timeout=30).values():
                try:
                    future.result()
                except Exception as exc:  # a topic Quix never created, for instance
                    print(f"cleanup: {exc}", file=sys.stderr)
        groups = [g.group_id for g in self.admin.list_consumer_groups().result(timeout=10).valid
                  if g.group_id.startswith(self.prefix)]
        # A static member (the console's processes run with --instance-id) stays in its group
        # for the session timeout after it stopped: a group still "not empty" is tried again.
        deadline = time.monotonic() + settings.CONSUMER_SESSION_TIMEOUT_MS / 1000 + 15
        while groups:
            left = []
            for group, future in self.admin.delete_consumer_groups(groups, request_timeout=10).items():
                try:
                    future.result()
                except Exception as exc:
                    if "NON_EMPTY_GROUP" in str(exc) and time.monotonic() < deadline:
                        left.append(group)
                    else:
                        print(f"cleanup: {exc}", file=sys.stderr)
            groups = left
            if groups:
                time.sleep(2)
        for path in self.state_dirs:
            shutil.rmtree(path, ignore_errors=True)


# --- input and the independent computation --------------------------------------------------------

def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, tz=UTC).isoformat().replace("+00:00", "Z")


def generate_orders(run: Run, n: int, *, invalid_share: float, start: float, span: float,
                    rng: random.Random) -> tuple[list[tuple[str, bytes]], dict[WindowKey, list[int]]]:
    """(key, value) pairs in produce order, and the expected [count, cents] per window of the valid ones."""
    window = settings.ORDERS_WINDOW_SECONDS
    messages: list[tuple[str, bytes]] = []
    expected: dict[WindowKey, list[int]] = defaultdict(lambda: [0, 0])
    for i in range(n):
        moment = start + span * i / n
        cents = rng.randint(1000, 50_000)
        order: dict[str, Any] = {
            "order_id": f"order-{run.suffix}-{i}", "user_id": f"user-{rng.randint(1, 100)}",
            "product_id": rng.choice(run.products), "amount": cents / 100, "timestamp": iso(moment),
        }
        invalid = invalid_share and rng.random() < invalid_share
        if invalid:
            kind = rng.randrange(5)
            if kind == 0:
                order["product_id"] = run.unknown
            elif kind == 1:
                order["amount"] = 0
            elif kind == 2:
                order["amount"] = -order["amount"]
            elif kind == 3:
                order["user_id"] = ""
            else:
                order["timestamp"] = "not a time"
        else:
            tally = expected[(order["product_id"], int(moment // window) * window)]
            tally[0] += 1
            tally[1] += cents
        messages.append((order["product_id"], json.dumps(order).encode()))
    return messages, dict(expected)


def closing_orders(run: Run, moment: float) -> list[tuple[int, bytes]]:
    """One valid order per partition, late enough in event time to close every window before it."""
    return [(p, json.dumps({"order_id": f"order-{run.suffix}-close-{p}", "user_id": "user-bench",
                            "product_id": run.closer, "amount": 1.0, "timestamp": iso(moment)}).encode())
            for p in range(run.partitions)]


def bench_producer() -> Producer:
    return Producer(client_config(**{"linger.ms": 20, "batch.size": 1_000_000, "acks": "all",
                                     "enable.idempotence": True, "compression.type": "none"}))


def check_windows(actual: dict[WindowKey, tuple[int, int]], expected: dict[WindowKey, list[int]]) -> str:
    wrong = [k for k in expected.keys() | actual.keys()
             if tuple(expected.get(k, (0, 0))) != tuple(actual.get(k, (0, 0)))]
    count = sum(c for c, _ in actual.values())
    cents = sum(r for _, r in actual.values())
    total = f"{count:,} orders, revenue {cents / 100:,.2f}"
    if wrong:
        return f"MISMATCH in {len(wrong)} of {len(expected)} windows ({total})"
    return f"OK: {len(expected)} windows equal the independent computation ({total})"


# --- baselines ------------------------------------------------------------------------------------

def bare_consume(topic: str, group: str, n: int, *, decode: bool, timeout: float) -> float:
    """Messages/s from the first message to the n-th, with consume(num_messages=1000)."""
    consumer = Consumer(client_config(**{"group.id": group, "auto.offset.reset": "earliest",
                                          "enable.auto.commit": False}))
    consumer.subscribe([topic])
    seen, first = 0, None
    deadline = time.monotonic() + timeout
    loads = json.loads
    while seen < n and time.monotonic() < deadline:
        batch = consumer.consume(num_messages=1000, timeout=1.0)
        if batch and first is None:
            first = time.perf_counter()
        for msg in batch:
            if msg.error() is None:
                if decode:
                    loads(msg.value())
                seen += 1
    secs = time.perf_counter() - (first or time.perf_counter())
    consumer.close()
    return seen / secs if secs else float("nan")


# --- the console ----------------------------------------------------------------------------------

def console_env(run: Run, topics: dict[str, str], tag: str, grace: int) -> dict[str, str]:
    env = dict(os.environ)
    env["ORDERS_WINDOW_GRACE_SECONDS"] = str(grace)  # the same grace as the Quix job
    env.update({f"KAFKA_TOPIC_{logical.upper()}": name for logical, name in topics.items()})
    env["CONSUMER_GROUP_PREFIX"] = f"{run.prefix}-{tag}"
    env["LOG_LEVEL"] = os.environ.get("BENCH_LOG_LEVEL", "WARNING")
    env["DEBUG"] = "false"  # as in production: a development .env's DEBUG keeps every query's SQL in memory
    return env


def console_start(run: Run, env: dict[str, str], batch_size: int, wrap: str = "", members: int = 1) -> None:
    for name in ("orders", "order_windows"):
        for member in range(members):  # each a static member, as `make run` starts replicas
            run.spawn([*wrap.replace("{name}", name).split(), sys.executable, str(ROOT / "manage.py"),
                       "run_consumer", name, "--batch-size", str(batch_size), "--instance-id", str(member)], env)


def console_windows(run: Run) -> dict[WindowKey, tuple[int, int]]:
    # Late orders (beyond the grace) are held on their window, not added: both count here.
    rows = ProductWindow.objects.filter(product_id__in=run.products).values_list(
        "product_id", "window_start", "order_count", "total_revenue", "late_count", "late_revenue")
    return {(p, int(s.timestamp())): (c + lc, int((r + lr) * 100)) for p, s, c, r, lc, lr in rows}


def console_throughput(run: Run, topics: dict[str, str], valid: int, args: argparse.Namespace, members: int = 1,
                       tag: str = "", extra_env: dict[str, str] | None = None
                       ) -> tuple[float, float, dict[WindowKey, tuple[int, int]]]:
    windows = ProductWindow.objects.filter(product_id__in=run.products)
    started = time.monotonic()
    run.stop_signal = signal.SIGINT if args.wrap else signal.SIGTERM  # py-spy writes its profile on SIGINT
    env = {**console_env(run, topics, f"e2e{members}{tag}", args.grace), **(extra_env or {})}
    console_start(run, env, args.batch_size, args.wrap, members)
    first_row, counted = None, 0
    deadline = started + args.timeout
    while counted < valid and time.monotonic() < deadline:
        time.sleep(0.2)
        counted = sum(c + lc for c, lc in windows.values_list("order_count", "late_count"))
        if counted and first_row is None:
            first_row = time.monotonic()
    finished = time.monotonic()
    run.stop()
    if counted < valid:
        print(f"console INCOMPLETE: {counted:,} of {valid:,} orders windowed after {finished - started:.0f}s")
    return counted / (finished - started), counted / (finished - (first_row or started)), console_windows(run)


# --- Quix Streams ---------------------------------------------------------------------------------

def quix_throughput(run: Run, topics: dict[str, str], valid: int, args: argparse.Namespace
                    ) -> tuple[float, float, dict[WindowKey, tuple[int, int]]]:
    """(orders/s from launch, seconds to the first final window, the final windows read)."""
    output = run.create_topics("quix", ("metrics",))["metrics"]
    state_dir = ROOT / ".run" / f"{run.prefix}-quix-state"
    run.state_dirs.append(state_dir)
    reader = Consumer(client_config(**{"group.id": f"{run.prefix}-quix-reader", "auto.offset.reset": "earliest",
                                        "enable.auto.commit": False, "isolation.level": "read_committed"}))
    reader.subscribe([output])
    reader.consume(num_messages=1, timeout=2.0)  # joined before the job starts: no output is missed
    started = time.monotonic()
    run.spawn([str(args.quix_python), str(ROOT / "bench" / "quix_orders.py"),
               "--broker", settings.KAFKA_BOOTSTRAP_SERVERS, "--input", topics["orders"], "--output", output,
               "--group", f"{run.prefix}-quix", "--state-dir", str(state_dir),
               "--window-ms", str(settings.ORDERS_WINDOW_SECONDS * 1000), "--grace-ms", str(args.grace * 1000),
               "--commit-interval", str(args.quix_commit_interval)], dict(os.environ))
    windows: dict[WindowKey, tuple[int, int]] = {}
    counted, first = 0, None
    deadline = started + args.timeout
    ours = set(run.products)
    while counted < valid and time.monotonic() < deadline:
        for msg in reader.consume(num_messages=1000, timeout=0.2):
            if msg.error() is not None:
                continue
            w = json.loads(msg.value())
            if w["product_id"] in ours:
                first = first or time.monotonic()
                windows[(w["product_id"], w["window_start"])] = (w["order_count"], round(w["total_revenue"] * 100))
        counted = sum(c for c, _ in windows.values())
        if run.procs[-1].poll() is not None:
            print(f"Quix Streams job exited with {run.procs[-1].returncode}")
            break
    finished = time.monotonic()
    reader.close()
    run.stop()
    if counted < valid:
        print(f"Quix INCOMPLETE: {counted:,} of {valid:,} orders in final windows after {finished - started:.0f}s")
    return counted / (finished - started), (first or finished) - started, windows


# --- latency --------------------------------------------------------------------------------------

class WindowUpdates(threading.Thread):
    """Reads product-metrics in the background: (receive time, count) per window, in arrival order,
    and when each window's first final message arrived."""

    def __init__(self, topic: str, group: str) -> None:
        super().__init__(daemon=True)
        self.consumer = Consumer(client_config(**{"group.id": group, "auto.offset.reset": "earliest",
                                                   "enable.auto.commit": False}))
        self.consumer.subscribe([topic])
        self.updates: dict[WindowKey, list[tuple[float, int]]] = defaultdict(list)
        self.finals: dict[WindowKey, float] = {}
        self.products: set[str] = set()
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            for msg in self.consumer.consume(num_messages=1000, timeout=0.1):
                if msg.error() is None:
                    received = time.time()
                    w = json.loads(msg.value())
                    key = (w["product_id"], w["window_start"])
                    self.updates[key].append((received, w["order_count"]))
                    if w.get("final"):
                        self.finals.setdefault(key, received)
                    self.products.add(w["product_id"])
        self.consumer.close()

    def count(self, key: WindowKey) -> int:
        seen = self.updates.get(key)
        return max(c for _, c in seen) if seen else 0


def percentiles(values: list[float]) -> tuple[float, float]:
    """(p50, p99) in ms of values in seconds (NaN when there are none)."""
    values = sorted(values)
    if not values:
        return float("nan"), float("nan")
    return values[len(values) // 2] * 1000, values[min(len(values) - 1, int(len(values) * 0.99))] * 1000


def console_latency(run: Run, args: argparse.Namespace, rng: random.Random
                    ) -> tuple[float, float, float, float, float, int]:
    """(p50 ms, p99 ms) of order produce -> first window update counting it, the achieved rate,
    and (p50 ms, p99 ms, windows) of window end + grace -> its final message.

    The latency run has windows of --latency-window seconds (event time = produce time), so
    that several windows close within it: the second pair is the event-to-final-window
    latency, from the moment the window may be final (the wall clock, equal to event time
    here, passes its end plus the grace) to the arrival of its final state on product-metrics."""
    topics = run.create_topics("lat", CONSOLE_TOPICS)
    updates = WindowUpdates(topics["product_metrics"], f"{run.prefix}-lat-reader")
    updates.start()
    window = args.latency_window
    env = console_env(run, topics, "lat", args.grace)
    env["ORDERS_WINDOW_SECONDS"] = str(window)
    console_start(run, env, args.batch_size)
    producer = bench_producer()
    # Warm-up: closer orders until one comes back as a window, so start-up is not measured.
    # They go to the partition of a measured product (its key): on a partition that no
    # measured product hashes to, they would leave an input partition that falls quiet as
    # the run starts, and that holds the watermark for ORDERS_IDLE_CLOSE_SECONDS (30 s), as
    # designed; that made the slow latency runs of 2026-12-02 and 2026-12-06.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and run.closer not in updates.products:
        producer.produce(topics["orders"], key=run.products[0], value=json.dumps({
            "order_id": f"order-{run.suffix}-warm-{uuid.uuid4().hex[:8]}", "user_id": "user-bench",
            "product_id": run.closer, "amount": 1.0, "timestamp": iso(time.time())}).encode())
        producer.flush(10)
        time.sleep(0.5)
    time.sleep(2)
    produced: dict[WindowKey, list[float]] = defaultdict(list)
    tick, per_tick = 0.01, max(1, round(args.rate * 0.01))
    started = time.monotonic()
    total, i = round(args.rate * args.latency_seconds), 0
    while i < total:
        for _ in range(min(per_tick, total - i)):
            now = time.time()
            product = rng.choice(run.products)
            producer.produce(topics["orders"], key=product, value=json.dumps({
                "order_id": f"order-{run.suffix}-lat-{i}", "user_id": f"user-{rng.randint(1, 100)}",
                "product_id": product, "amount": rng.randint(1000, 50_000) / 100, "timestamp": iso(now)}).encode())
            produced[(product, int(now // window) * window)].append(now)
            i += 1
        producer.poll(0)
        next_tick = started + tick * (i // per_tick)
        if (pause := next_tick - time.monotonic()) > 0:
            time.sleep(pause)
    producer.flush(60)
    last_produced = time.time()
    rate = total / (time.monotonic() - started)
    # Windows that ended (plus the grace) a second before the last order: final by the watermark.
    closing = [k for k in produced if k[1] + window + args.grace < last_produced - 1]
    # At most two minutes: an order held as late never shows up in an update (it is reported below).
    deadline = time.monotonic() + min(args.timeout, 120)
    while time.monotonic() < deadline and (any(updates.count(k) < len(v) for k, v in produced.items())
                                           or any(k not in updates.finals for k in closing)):
        time.sleep(0.2)
    updates.halt.set()
    updates.join(10)
    run.stop()
    latencies = []
    for key, produce_times in produced.items():
        seen = updates.updates.get(key, [])
        counts = [c for _, c in seen]
        best = [0.0] * len(seen)  # running max: counts only grow, but keep it robust to reordering
        running = 0
        for j, c in enumerate(counts):
            running = max(running, c)
            best[j] = running
        for k, produced_at in enumerate(produce_times, 1):
            j = bisect.bisect_left(best, k)
            if j < len(seen):
                latencies.append(seen[j][0] - produced_at)
    missing = total - len(latencies)
    if missing:
        ours = ProcessedOrder.objects.filter(order_id__startswith=f"order-{run.suffix}-lat-")
        print(f"latency: {missing:,} of {total:,} orders never showed up in a window update "
              f"({ours.filter(late=True).count():,} held as late on their windows; "
              f"{ours.count():,} of {total:,} stored)")
    finals = [updates.finals[k] - (k[1] + window + args.grace) for k in closing if k in updates.finals]
    if len(finals) < len(closing):
        print(f"latency: {len(closing) - len(finals)} of {len(closing)} closed windows never arrived as final")
    p50, p99 = percentiles(latencies)
    f50, f99 = percentiles(finals)
    return p50, p99, rate, f50, f99, len(finals)


# --- main -----------------------------------------------------------------------------------------

def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=1_000_000, help="Orders to produce (default 1000000).")
    parser.add_argument("--partitions", type=int, default=3, help="Partitions per bench topic (default 3).")
    parser.add_argument("--batch-size", type=int, default=settings.CONSUMER_BATCH_SIZE,
                        help="Console consumer batch size (default CONSUMER_BATCH_SIZE).")
    parser.add_argument("--invalid-share", type=float, default=0.01, help="Share of invalid orders (default 0.01).")
    parser.add_argument("--event-span", type=float, default=600.0,
                        help="Seconds of event time the N orders cover (default 600: ten 1-minute windows).")
    parser.add_argument("--grace", type=int, default=0, help="Window grace period in seconds, for the console and Quix (default 0).")
    parser.add_argument("--rate", type=int, default=5000, help="Offered rate of the latency run (default 5000/s).")
    parser.add_argument("--latency-seconds", type=float, default=30.0, help="Length of the latency run (default 30).")
    parser.add_argument("--latency-window", type=int, default=5,
                        help="Window size in seconds of the latency run, so windows close within it (default 5).")
    parser.add_argument("--quix-python", type=Path, default=QUIX_PYTHON,
                        help="Python of the Quix Streams virtualenv (default .run/bench-quix/bin/python).")
    parser.add_argument("--quix-commit-interval", type=float, default=5.0,
                        help="Quix Streams commit interval in seconds (default 5, Quix's own default).")
    parser.add_argument("--skip-quix", action="store_true", help="Leave out the Quix Streams baseline.")
    parser.add_argument("--wrap", default="", help="A command prefix for the two console consumers of the "
                        "throughput run, {name} standing for the consumer, such as "
                        "'py-spy record -o {name}.svg --' to profile them.")
    parser.add_argument("--skip-latency", action="store_true", help="Leave out the latency run.")
    parser.add_argument("--members", type=int, default=3,
                        help="A second console stage with this many processes per group (default 3; 1: none).")
    parser.add_argument("--otlp-endpoint", default="",
                        help="Also run the console with its spans exported to this OTLP/HTTP endpoint "
                             "(e.g. http://127.0.0.1:4318 of `make tracing-up`), and print the ratio to tracing off.")
    parser.add_argument("--seed", type=int, default=2, help="Random seed of the generated orders.")
    parser.add_argument("--timeout", type=float, default=1800, help="Give up on a stage after this many seconds.")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # progress shows in a redirected log
    if not args.skip_quix and not args.quix_python.exists():
        parser.error(f"{args.quix_python} is missing: python3.11 -m venv .run/bench-quix && "
                     ".run/bench-quix/bin/pip install -r requirements-bench.txt (or use make bench-orders)")

    # The windows are shared per database: a live order_windows of another group (`make run`,
    # a leftover bench process) would hold the bench's consumers and close its windows.
    rival = rival_group(consumer="order_windows", group="bench")
    if rival:
        raise SystemExit(f"bench-orders cannot run now: {rival}")

    load_start = load()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    print(f"bench-orders at commit {commit}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
          f"load average at start {load_start}")
    rng = random.Random(args.seed)
    run = Run(args.partitions)
    try:
        n = args.orders
        window = settings.ORDERS_WINDOW_SECONDS
        start = (time.time() // 3600 - 2) * 3600  # two hours ago, on the hour
        messages, expected = generate_orders(run, n, invalid_share=args.invalid_share, start=start,
                                             span=args.event_span, rng=rng)
        valid = sum(c for c, _ in expected.values())
        topics = run.create_topics("e2e", CONSOLE_TOPICS)
        producer = bench_producer()
        t0 = time.monotonic()
        for key, value in messages:
            while True:
                try:
                    producer.produce(topics["orders"], key=key, value=value)
                    break
                except BufferError:
                    producer.poll(0.05)
        closer_time = start + args.event_span + window + args.grace + 1
        producer.flush(300)  # the queue may be full: the closing orders go last, after every order
        for partition, value in closing_orders(run, closer_time):
            producer.produce(topics["orders"], key=run.closer, value=value, partition=partition)
        if producer.flush(300):
            raise SystemExit("the broker did not acknowledge every order")
        produce_s = time.monotonic() - t0
        print(f"produced {n:,} orders ({valid:,} valid, {len(expected)} windows) + {args.partitions} closing "
              f"in {produce_s:.1f}s ({n / produce_s:,.0f}/s)")

        raw_rate = bare_consume(topics["orders"], f"{run.prefix}-raw", n, decode=False, timeout=args.timeout)
        print(f"baseline bare consume():              {raw_rate:>10,.0f} orders/s")
        json_rate = bare_consume(topics["orders"], f"{run.prefix}-json", n, decode=True, timeout=args.timeout)
        print(f"baseline bare consume() + json.loads: {json_rate:>10,.0f} orders/s")

        console_rate, console_steady, console_got = console_throughput(run, topics, valid, args)
        print(f"console end to end (2 hops, PostgreSQL): {console_rate:>8,.0f} orders/s from process launch, "
              f"{console_steady:,.0f}/s from the first window row")
        print(f"console exact: {check_windows(console_got, expected)}")
        late = ProductWindow.objects.filter(product_id__in=run.products).aggregate(n=Sum("late_count"))["n"] or 0
        # The input partitions are in event-time order, so with the watermark from upstream none is late.
        print(f"console late (held on their windows, counted above): {late:,} orders (grace {args.grace} s)")

        if args.otlp_endpoint:
            # Again with spans exported over OTLP (a batch = one span), from empty tables and new groups.
            run.forget_results()
            traced = {**topics, **run.create_topics("e2etraced", ("processed_orders", "product_metrics"))}
            traced_rate, traced_steady, traced_got = console_throughput(
                run, traced, valid, args, tag="traced", extra_env={"OTEL_EXPORTER_OTLP_ENDPOINT": args.otlp_endpoint})
            print(f"console end to end, tracing exported to {args.otlp_endpoint}: {traced_rate:>8,.0f} orders/s from "
                  f"process launch, {traced_steady:,.0f}/s from the first window row "
                  f"({traced_rate / console_rate:.3f}x tracing off)")
            print(f"console exact (tracing exported): {check_windows(traced_got, expected)}")

        members_rate = float("nan")
        if args.members > 1:
            # Again with several members per group (new groups, fresh downstream topics, the
            # same input), from empty tables: what scale-out costs or gains on this machine.
            run.forget_results()
            wide = {**topics, **run.create_topics(f"e2e{args.members}", ("processed_orders", "product_metrics"))}
            members_rate, members_steady, members_got = console_throughput(run, wide, valid, args, args.members)
            print(f"console end to end, {args.members} members per group: {members_rate:>8,.0f} orders/s from "
                  f"process launch, {members_steady:,.0f}/s from the first window row "
                  f"({members_rate / console_rate:.2f}x one member)")
            print(f"console exact ({args.members} members): {check_windows(members_got, expected)}")
            late = ProductWindow.objects.filter(product_id__in=run.products).aggregate(n=Sum("late_count"))["n"]
            print(f"console late ({args.members} members): {late or 0:,} orders")

        quix_rate = float("nan")
        if not args.skip_quix:
            quix_rate, quix_first_s, quix_got = quix_throughput(run, topics, valid, args)
            # Final windows arrive in bursts at Quix's commits, so there is no "steady" rate to quote.
            print(f"Quix Streams 3.28 (1 hop, RocksDB, exactly-once, .final()): {quix_rate:>8,.0f} orders/s from "
                  f"process launch (first final window after {quix_first_s:.1f}s)")
            print(f"Quix exact: {check_windows(quix_got, expected)}")

        p50 = p99 = f99 = float("nan")
        if not args.skip_latency:
            p50, p99, offered, f50, f99, closed = console_latency(run, args, rng)
            print(f"console latency at {offered:,.0f} orders/s offered for {args.latency_seconds:.0f}s, order produced "
                  f"-> first window update counting it on product-metrics: p50 {p50:,.0f} ms, p99 {p99:,.0f} ms")
            print(f"console event-to-final-window latency ({args.latency_window}-s windows, grace {args.grace} s), "
                  f"window end + grace -> its final message on product-metrics, {closed} windows: "
                  f"p50 {f50:,.0f} ms, p99 {f99:,.0f} ms")

        print(f"load average at start {load_start}, at end {load()}")
        vs_quix = console_rate / quix_rate if quix_rate else float("nan")
        if not args.skip_quix and not args.skip_latency:
            print(f"target: >= 2x Quix Streams and event-to-final-window p99 <= 1 s: "
                  f"{'met' if vs_quix >= 2 and f99 <= 1000 else 'NOT met'} ({vs_quix:.2f}x, p99 {f99:,.0f} ms)")
        print(f"orders: {console_rate:,.0f} orders/s end to end, {vs_quix:.2f}x Quix Streams, "
              f"{console_rate / json_rate:.3f}x bare consume+json, p99 {f99:,.0f} ms at {args.rate:,}/s "
              f"(event to final window; first window update p99 {p99:,.0f} ms)")
    finally:
        run.cleanup()


if __name__ == "__main__":
    main()
