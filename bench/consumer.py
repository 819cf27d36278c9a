"""Consumer runtime throughput: `telemetry` end to end vs a bare consume loop.

    .venv/bin/python bench/consumer.py [--messages 400000] [--batch-size CONSUMER_BATCH_SIZE]

Produces N metric events to a fresh topic, then measures in the same run:
  * bare: a plain confluent-kafka consumer reading the topic (consume()
    batches, no decoding, no database), messages/s;
  * bare + decode: the same loop, each value parsed and validated by the
    telemetry rules (what any consumer of this topic must do at least);
  * arroyo: sentry-arroyo's StreamProcessor with the strategies the console
    used before (RunTask decode -> BatchStep -> a no-op apply -> commit), no
    database: the framework's own cost per message;
  * console: `manage.py run_consumer telemetry` (decode + validate + upsert
    in PostgreSQL + offsets + commit), messages/s from the first batch stored to
    the last (its positions in PostgreSQL, polled every 50 ms; every row checked
    at the end);
and prints the ratios. With --otlp-endpoint, the console consumer runs again with
its spans exported (tracing on), from empty rows, and the ratio to tracing off is
printed. Not a test: it prints figures for docs/kafka.md.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")

import django  # noqa: E402

django.setup()

from confluent_kafka import Consumer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402

from streams.kafka.client import client_config  # noqa: E402
from streams.kafka.producer import Outbound, produce_and_wait  # noqa: E402
from streams.kafka.models import ConsumerOffset  # noqa: E402
from streams.models import MachineMetric  # noqa: E402


def bare_decode(topic: str, run: str, n: int, batch_size: int) -> float:
    """consume() + orjson + the telemetry rules, per message: the floor of any consumer of the topic."""
    from streams.kafka.decoding import decode_json_object
    from streams.telemetry.rules import validate_metric

    consumer = Consumer(client_config(**{"group.id": f"bench-{run}-decode", "auto.offset.reset": "earliest",
                                          "enable.auto.commit": False}))
    consumer.subscribe([topic])
    seen, first = 0, None
    deadline = time.monotonic() + 300
    while seen < n and time.monotonic() < deadline:
        batch = consumer.consume(num_messages=batch_size, timeout=1.0)
        if batch and first is None:
            first = time.perf_counter()
        for m in batch:
            if m.error() is None:
                validate_metric(decode_json_object(m.value()))
                seen += 1
    secs = time.perf_counter() - (first or time.perf_counter())
    consumer.close()
    return seen / secs if secs else float("nan")


def arroyo_noop(topic: str, run: str, n: int, batch_size: int) -> float:
    """sentry-arroyo with decode -> batch -> no-op apply -> commit: the framework, no database."""
    from arroyo.backends.kafka import KafkaConsumer
    from arroyo.backends.kafka.configuration import build_kafka_consumer_configuration
    from arroyo.commit import IMMEDIATE
    from arroyo.processing import StreamProcessor
    from arroyo.processing.strategies import BatchStep, CommitOffsets, ProcessingStrategyFactory, RunTask
    from arroyo.types import Topic

    from streams.kafka.decoding import decode_json_object
    from streams.telemetry.rules import validate_metric

    seen = {"n": 0, "first": None, "last": None}

    def decode(message):
        return validate_metric(decode_json_object(message.payload.value))

    def apply(message):
        if seen["first"] is None:
            seen["first"] = time.perf_counter()
        seen["n"] += len(message.payload)
        if seen["n"] >= n:
            seen["last"] = time.perf_counter()
            processor.signal_shutdown()
        return message.payload

    class Factory(ProcessingStrategyFactory):
        def create_with_partitions(self, commit, partitions):
            return RunTask(decode, BatchStep(max_batch_size=batch_size, max_batch_time=0.2,
                                             next_step=RunTask(apply, CommitOffsets(commit))))

    base = client_config()
    bootstrap = base.pop("bootstrap.servers")
    configuration = build_kafka_consumer_configuration(default_config=base, group_id=f"bench-{run}-arroyo",
                                                       auto_offset_reset="earliest",
                                                       bootstrap_servers=bootstrap.split(","))
    processor = StreamProcessor(consumer=KafkaConsumer(configuration), topic=Topic(topic),
                                processor_factory=Factory(), commit_policy=IMMEDIATE)
    processor.run()
    secs = (seen["last"] or time.perf_counter()) - (seen["first"] or time.perf_counter())
    return seen["n"] / secs if secs else float("nan")


def console_run(args: argparse.Namespace, run: str, topic: str, other: str, dlq: str, base_time: int, n: int, *,
                tag: str, env: dict[str, str] | None = None) -> float | None:
    """`run_consumer telemetry` over the topic as a new group from empty rows: msgs/s, or None."""
    group_prefix = f"bench-{run}{tag}"
    env = dict(os.environ, KAFKA_TOPIC_METRICS=topic, KAFKA_TOPIC_WORKORDERS=other, KAFKA_TOPIC_DEAD_LETTERS=dlq,
               CONSUMER_GROUP_PREFIX=group_prefix, LOG_LEVEL=os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
               **(env or {}))
    rows = MachineMetric.objects.filter(time__gte=base_time, time__lt=base_time + n)
    rows.delete()
    # Every run starts from a vacuumed table: the rows an earlier run deleted would otherwise
    # still be in the unique index, and each insert of the next run would step over them.
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {MachineMetric._meta.db_table}")
    proc = subprocess.Popen([*args.wrap.split(), sys.executable, str(ROOT / "manage.py"), "run_consumer", "telemetry",
                             "--batch-size", str(args.batch_size)], cwd=ROOT, env=env)
    # Progress is read from the consumer's positions in PostgreSQL (a row per partition,
    # written in each batch's transaction), not by counting rows: a count(*) every 50 ms
    # over the growing table took a share of the two cores from the process measured.
    positions = ConsumerOffset.objects.filter(group=f"{group_prefix}-telemetry", topic=topic)
    t_first = t_last = None
    first_count = 0  # stored when the clock starts: not counted in the rate
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline:
            count = sum(positions.values_list("next_offset", flat=True))
            now = time.perf_counter()
            if count and t_first is None:
                t_first, first_count = now, count
            if count >= n:
                t_last = now
                break
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGINT if args.wrap else signal.SIGTERM)  # py-spy writes its profile on SIGINT
        proc.wait(timeout=60)
    stored = rows.count()
    label = "run_consumer telemetry" + (f" ({tag})" if tag else "")
    if t_last is None or t_first is None or stored != n:
        print(f"console: {label} did not finish in time, or stored {stored:,} of {n:,} rows")
        return None
    secs = t_last - t_first
    rate = (n - first_count) / secs
    print(f"console: {label:<34} {n - first_count:,} rows in {secs:.2f}s = {rate:,.0f} msgs/s (after the "
          f"first batch stored; batch {args.batch_size}, {args.partitions} partitions, one process)")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=400_000)
    parser.add_argument("--batch-size", type=int, default=settings.CONSUMER_BATCH_SIZE,
                        help="Batch of the consumer and of the baselines' consume() "
                             f"(default {settings.CONSUMER_BATCH_SIZE}).")
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--wrap", default="", help="A command prefix for the console consumer, such as "
                        "'py-spy record -o telemetry.svg --' to profile it.")
    parser.add_argument("--skip-arroyo", action="store_true", help="Leave out the arroyo option.")
    parser.add_argument("--otlp-endpoint", default="",
                        help="Run the console consumer again with its spans exported to this OTLP/HTTP endpoint "
                             "(e.g. http://127.0.0.1:4318 of `make tracing-up`) and print the ratio to tracing off.")
    args = parser.parse_args()

    run = uuid.uuid4().hex[:8]
    topic, other = f"bench-{run}-metrics", f"bench-{run}-workorders"
    dlq = f"bench-{run}-dead-letters"
    admin = AdminClient(client_config())
    for f in admin.create_topics([NewTopic(t, num_partitions=args.partitions, replication_factor=1)
                                  for t in (topic, other, dlq)]).values():
        f.result()
    base_time = 3_000_000_000 + int(time.time()) % 1_000_000 * 100
    n = args.messages

    started = time.perf_counter()
    produce_and_wait((Outbound(topic, {"id": i % 20, "val": i * 0.5, "time": base_time + i})
                      for i in range(n)), timeout=300)
    produce_secs = time.perf_counter() - started
    print(f"produced {n:,} events in {produce_secs:.2f}s ({n / produce_secs:,.0f}/s, acks=all, idempotent)")

    # Baseline: the bare client, no decoding and no database.
    consumer = Consumer(client_config(**{"group.id": f"bench-{run}-raw", "auto.offset.reset": "earliest",
                                          "enable.auto.commit": False}))
    consumer.subscribe([topic])
    seen, first = 0, None
    deadline = time.monotonic() + 300
    while seen < n and time.monotonic() < deadline:
        batch = consumer.consume(num_messages=args.batch_size, timeout=1.0)
        if batch and first is None:
            first = time.perf_counter()
        seen += sum(1 for m in batch if m.error() is None)
    raw_secs = time.perf_counter() - (first or time.perf_counter())
    consumer.close()
    raw_rate = seen / raw_secs if raw_secs else float("nan")
    print(f"baseline: bare confluent-kafka consume()  {seen:,} msgs in {raw_secs:.2f}s = {raw_rate:,.0f} msgs/s")
    decode_rate = bare_decode(topic, run, n, args.batch_size)
    print(f"baseline: bare consume() + decode         {n:,} msgs = {decode_rate:,.0f} msgs/s")
    arroyo_rate = float("nan") if args.skip_arroyo else arroyo_noop(topic, run, n, args.batch_size)
    print(f"option:   arroyo strategies, no database  {n:,} msgs = {arroyo_rate:,.0f} msgs/s")

    rate = console_run(args, run, topic, other, dlq, base_time, n, tag="")
    if rate:
        print(f"ratio console / bare consume: {rate / raw_rate:.2f}; console / bare consume + decode: "
              f"{rate / decode_rate:.2f}; arroyo alone / bare consume + decode: {arroyo_rate / decode_rate:.2f}")
        print(f"telemetry: {rate:,.0f} msgs/s, {rate / decode_rate:.2f}x bare consume+decode, "
              f"{rate / raw_rate:.2f}x bare consume")
        print(f"target: run_consumer telemetry >= 0.5x bare consume + decode: "
              f"{'met' if rate / decode_rate >= 0.5 else 'NOT met'} ({rate / decode_rate:.2f}x)")
    if args.otlp_endpoint and rate:
        traced = console_run(args, run, topic, other, dlq, base_time, n, tag="traced",
                             env={"OTEL_EXPORTER_OTLP_ENDPOINT": args.otlp_endpoint})
        if traced:
            print(f"telemetry, tracing exported to {args.otlp_endpoint}: {traced:,.0f} msgs/s, "
                  f"{traced / rate:.3f}x tracing off")
    MachineMetric.objects.filter(time__gte=base_time, time__lt=base_time + n).delete()
    ConsumerOffset.objects.filter(group__startswith=f"bench-{run}").delete()
    for f in admin.delete_topics([topic, other, dlq]).values():
        f.result()


if __name__ == "__main__":
    main()
