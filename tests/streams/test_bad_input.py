"""Bad input never stops a consumer, and nothing is lost (real broker, database and processes).

For every consumer: one batch mixing valid messages with each kind of bad
message. The consumer is still running, its offsets are committed to the end,
every valid message was applied, and every bad one has a quarantine record
whose reason names the field or the database error.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
from django.db import connection

from quarantine.models import QuarantineRecord
from streams.kafka.producer import Outbound, produce_and_wait
from streams.models import (
    ActivityEvent, ConsumerHeartbeat, MachineMetric, ProcessedOrder, Product, SensorReading, TelemetryOverwrite,
    WorkOrderReading,
)
from tests.conftest import committed, wait_until

T = 1700000001
BIG = "9" * 400

# Bad whatever the topic: (raw bytes, a word the quarantine reason must contain).
GENERIC_BAD = [
    (b"\xff\xfe\x00garbage", "UTF-8"),
    (b"not json at all", "not JSON"),
    (b"", "not JSON"),
    (b"[1, 2, 3]", "JSON object"),
    (b'{"val": NaN}', "NaN"),
    (b'{"val": Infinity}', "NaN and Infinity"),
    (b'{"a": ' + b"[" * 200 + b"]" * 200 + b"}", "a"),
    (b'{"a\\u0000b": 1}', "NUL"),
    (b'{"x": 1e400}', "too large"),
]


def assert_accounted(kafka, processes, proc, name: str, logicals: list[str], bad: list[tuple[bytes, str]],
                     *, timeout: float = 60) -> None:
    group = f"{kafka.group_prefix}-{name}"

    def caught_up() -> bool:
        assert proc.poll() is None, processes.log(proc)
        done, end = committed(kafka, group, logicals)
        return done == end

    wait_until(caught_up, timeout=timeout, message=f"{name} to commit every offset")
    assert proc.poll() is None, "the consumer exited"
    records = list(QuarantineRecord.objects.filter(consumer=name).order_by("offset"))
    payloads = {bytes(r.payload): r for r in records}
    for raw, word in bad:
        assert raw in payloads, f"no quarantine record for {raw[:60]!r}"
        reason = payloads[raw].reason + json.dumps(payloads[raw].errors)
        assert word.lower() in reason.lower(), (raw[:60], reason)
    assert len(records) == len(bad), [r.reason for r in records]


def raw_out(topic: str, payloads: list[bytes]) -> list[Outbound]:
    return [Outbound(topic, p, key=str(i)) for i, p in enumerate(payloads)]


def test_telemetry_contains_every_bad_message_and_applies_the_rest(kafka, processes):
    valid = [json.dumps({"id": i, "val": i + 0.5, "time": T + i}).encode() for i in range(20)]
    bad = GENERIC_BAD + [
        (json.dumps({"id": 2147483648, "val": 1.0, "time": T}).encode(), "id"),
        (b'{"id": 1, "val": ' + BIG.encode() + b', "time": 1700000001}', "val"),
        (json.dumps({"id": 1, "val": 1.0, "time": 10**30}).encode(), "time"),
        (json.dumps({"id": "seven", "val": 1.0, "time": T}).encode(), "id"),
    ]
    mixed = [valid[i // 2] if i % 2 == 0 else bad[i // 2][0] for i in range(2 * len(bad))] + valid[len(bad):]
    produce_and_wait(raw_out(kafka.name("metrics"), mixed))
    bad_orders = [(json.dumps({"time": T, "product": 3_000_000_000, "production": 1.0}).encode(), "product")]
    produce_and_wait(raw_out(kafka.name("workorders"), [b'{"time": 1700000001, "product": 1, "production": 2.5}']
                             + [b for b, _ in bad_orders]))
    proc = processes.consumer("telemetry", "--batch-size", "1000", "--batch-time", "500")
    assert_accounted(kafka, processes, proc, "telemetry", ["metrics", "workorders"], bad + bad_orders)
    assert MachineMetric.objects.count() == 20
    assert WorkOrderReading.objects.count() == 1


def test_a_message_the_database_refuses_is_dead_lettered_and_the_batch_applied(kafka, processes):
    """Bisection in savepoints: a row the database refuses (here a CHECK constraint
    that no edge rule knows) is dead-lettered with the database's error; the
    rest of its batch is applied and committed."""
    table = MachineMetric._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT test_no_666 CHECK (value <> 666)")
    try:
        events = [{"id": i, "val": 666.0 if i in (3, 17) else float(i), "time": T + i} for i in range(40)]
        produce_and_wait([Outbound(kafka.name("metrics"), e, key="k") for e in events])
        proc = processes.consumer("telemetry", "--batch-size", "1000", "--batch-time", "500")
        refused = [(json.dumps(e).encode(), "test_no_666") for e in events if e["val"] == 666.0]
        group = f"{kafka.group_prefix}-telemetry"
        wait_until(lambda: committed(kafka, group, ["metrics"])[0] == 40, message="every offset committed")
        assert proc.poll() is None
        assert MachineMetric.objects.count() == 38
        records = QuarantineRecord.objects.filter(consumer="telemetry")
        assert sorted(r.offset for r in records) == [3, 17]
        assert all("refused by the database" in r.reason and "test_no_666" in r.reason for r in records)
        assert len(refused) == 2
        dead = kafka.read("dead_letters", expected=2)
        assert sorted(int(dict(m.headers())["x-dlq-original-offset"]) for m in dead) == [3, 17]
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS test_no_666")


def test_a_systemic_failure_pauses_the_consumer_instead_of_dead_lettering_the_topic(kafka, processes):
    """Every message refused: after CONSUMER_DLQ_MAX_CONSECUTIVE the consumer stops
    dead-lettering, says it is paused (heartbeat, /healthz), and applies everything
    once the fault is fixed."""
    table = MachineMetric._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT test_schema_fault CHECK (value < -1)")
    try:
        events = [{"id": i, "val": float(i), "time": T + i} for i in range(30)]
        produce_and_wait([Outbound(kafka.name("metrics"), e, key="k") for e in events])
        proc = processes.consumer("telemetry", "--batch-size", "1000", "--batch-time", "300",
                                  CONSUMER_DLQ_MAX_CONSECUTIVE="5", CONSUMER_HEARTBEAT_SECONDS="0.5")
        wait_until(lambda: ConsumerHeartbeat.objects.filter(consumer="telemetry", state="paused").exists(),
                   message="the consumer to say it is paused")
        beat = ConsumerHeartbeat.objects.get(consumer="telemetry")
        assert "in a row were refused by the database" in beat.reason
        from console.ops.health import consumer_states

        assert consumer_states()["telemetry"]["status"] == "failing"
        # At most the limit is dead-lettered before the pause (a first batch smaller than the limit).
        dead = QuarantineRecord.objects.filter(consumer="telemetry").count()
        assert dead <= 5
        assert proc.poll() is None
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS test_schema_fault")
    wait_until(lambda: MachineMetric.objects.count() == 30 - dead, timeout=90, message="every event once fixed")
    wait_until(lambda: ConsumerHeartbeat.objects.filter(consumer="telemetry", state="running").exists(),
               message="the consumer to say it is running again")
    assert QuarantineRecord.objects.filter(consumer="telemetry").count() == dead
    assert proc.poll() is None


def test_products_contain_bad_registrations(kafka, processes):
    def registration(pid: str, **over) -> dict:
        return {"productId": pid, "productName": "Nome", "productDescription": "d", "price": 10.0,
                "currency": "BRL", "stockQuantity": 5, "category": "c", **over}

    valid = [json.dumps(registration(f"p{i}")).encode() for i in range(5)]
    bad = GENERIC_BAD + [
        (json.dumps(registration("n1", productName="bad\u0000name")).encode(), "productName"),
        (json.dumps(registration("x" * 65)).encode(), "productId"),
        (json.dumps({**registration("n2"), "productId": int(BIG[:80])}).encode(), "productId"),
        (json.dumps(registration("n3", stockQuantity=2**40)).encode(), "stockQuantity"),
        (json.dumps(registration("n4", price=1e300)).encode(), "price"),
        (json.dumps(registration("n5", productName="x" * 300)).encode(), "productName"),
    ]
    produce_and_wait(raw_out(kafka.name("product_registrations"), valid[:2] + [b for b, _ in bad] + valid[2:]))
    proc = processes.consumer("products", "--batch-size", "1000", "--batch-time", "500")
    assert_accounted(kafka, processes, proc, "products", ["product_registrations"], bad)
    assert Product.objects.count() == 5


def test_orders_and_windows_contain_bad_messages(kafka, processes, catalog):
    def order(oid: str, **over) -> dict:
        return {"order_id": oid, "user_id": "u1", "product_id": "prod-1", "amount": 10.5,
                "timestamp": "2026-01-05T12:00:00Z", **over}

    valid = [json.dumps(order(f"o{i}")).encode() for i in range(6)]
    bad = GENERIC_BAD + [
        (json.dumps(order("bad\u0000id")).encode(), "order_id"),
        (json.dumps(order("o-big", amount=float(BIG[:30]))).encode(), "amount"),
        (json.dumps(order("o-long", product_id="p" * 100)).encode(), "product_id"),
        (json.dumps(order("o-unknown", product_id="nope")).encode(), "unknown product"),
    ]
    produce_and_wait(raw_out(kafka.name("orders"), valid[:3] + [b for b, _ in bad] + valid[3:]))
    bad_processed = [
        (json.dumps({**order("p1"), "product_name": "Laptop", "category": "bad\u0000"}).encode(), "NUL"),
        (json.dumps({**order("p2"), "product_name": "x" * 300}).encode(), "product_name"),
    ]
    produce_and_wait(raw_out(kafka.name("processed_orders"), [b for b, _ in bad_processed]))
    orders = processes.consumer("orders", "--batch-size", "1000", "--batch-time", "500")
    windows = processes.consumer("order_windows", "--batch-size", "1000", "--batch-time", "500")
    assert_accounted(kafka, processes, orders, "orders", ["orders"], bad)
    assert_accounted(kafka, processes, windows, "order_windows", ["processed_orders"], bad_processed)
    wait_until(lambda: ProcessedOrder.objects.count() == 6, message="the six valid orders stored")


def test_sensor_and_activity_streams_contain_bad_messages(kafka, processes):
    sensor = {"timestamp": "2026-01-05T12:00:00Z", "sensor_id": "s1", "temperature_celsius": 21.0,
              "humidity_percent": 40.0}
    activity = {"event_timestamp": "2026-01-05T12:00:00Z", "user_id": "u1", "session_id": "s", "action": "click",
                "details": {"page": "/"}}
    produce_and_wait(raw_out(kafka.name("sensor_data"), [json.dumps(sensor).encode()] * 3))
    bad_activity = GENERIC_BAD + [
        (json.dumps({**activity, "details": {"note": "a\u0000b"}}).encode(), "details.note"),
        (b'{"event_timestamp": "2026-01-05T12:00:00Z", "user_id": "u1", "session_id": "s", "action": "click", '
         b'"details": {"x": NaN}}', "NaN"),
        (json.dumps({**activity, "details": {"deep": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}})
         .encode(), "nested deeper"),
        (json.dumps({**activity, "user_id": "u" * 200}).encode(), "user_id"),
    ]
    produce_and_wait(raw_out(kafka.name("user_activity"), [json.dumps(activity).encode()] * 2
                             + [b for b, _ in bad_activity]))
    bad_processed = GENERIC_BAD + [
        (json.dumps({"type": "sensor", "timestamp": "2026-01-05T12:00:00Z", "sensor_id": "s\u0000",
                     "temperature_celsius": 1.0, "humidity_percent": 1.0}).encode(), "NUL"),
        (json.dumps({"type": "sensor", "timestamp": "2026-01-05T12:00:00Z", "sensor_id": "s2",
                     "temperature_celsius": 1.0, "humidity_percent": 1.0,
                     "origin": {"topic": "t", "partition": 2**40, "offset": 1}}).encode(), "origin"),
        (json.dumps({"type": "sensor", "timestamp": "2026-01-05T12:00:00Z", "sensor_id": "s2",
                     "temperature_celsius": 1.0, "humidity_percent": 1.0,
                     "origin": {"topic": "t" * 300, "partition": 1, "offset": 1}}).encode(), "origin"),
    ]
    produce_and_wait(raw_out(kafka.name("processed_data"), [b for b, _ in bad_processed]))
    standardize = processes.consumer("standardize", "--batch-size", "1000", "--batch-time", "500")
    sink = processes.consumer("processed_sink", "--batch-size", "1000", "--batch-time", "500")
    assert_accounted(kafka, processes, standardize, "standardize", ["sensor_data", "user_activity"], bad_activity)
    wait_until(lambda: SensorReading.objects.count() == 3 and ActivityEvent.objects.count() == 2,
               message="the valid readings stored by the sink")
    assert_accounted(kafka, processes, sink, "processed_sink", ["processed_data"], bad_processed)


def test_files_consumer_contains_bad_events(kafka, processes, settings, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    settings.INGEST_INBOX_DIR = inbox
    bad = GENERIC_BAD + [
        (json.dumps({"file_path": "x" * 300 + ".csv", "file_name": "a.csv"}).encode(), "too long"),
        (json.dumps({"file_path": "/".join(["d" * 200] * 8) + ".csv"}).encode(), "too long"),
        (json.dumps({"file_path": "../etc/passwd"}).encode(), ".."),
        (json.dumps({"file_path": "/etc/passwd"}).encode(), "absolute"),
        (json.dumps({"file_path": "missing.csv"}).encode(), "does not exist"),
        (json.dumps({"file_path": 42}).encode(), "file_path"),
    ]
    produce_and_wait(raw_out(kafka.name("file_events"), [b for b, _ in bad]))
    proc = processes.consumer("files", "--batch-size", "1000", "--batch-time", "500",
                              INGEST_INBOX_DIR=str(inbox))
    assert_accounted(kafka, processes, proc, "files", ["file_events"], bad)


def test_two_readings_in_the_same_second_never_collapse_silently(kafka, processes):
    events = [{"id": 7, "val": 1.0, "time": T}, {"id": 7, "val": 2.0, "time": T},
              {"id": 8, "val": 1.0, "time": T}, {"id": 8, "val": 1.0, "time": T}]
    produce_and_wait([Outbound(kafka.name("metrics"), e, key="k") for e in events])
    proc = processes.consumer("telemetry", "--batch-time", "300")
    wait_until(lambda: MachineMetric.objects.count() == 2, message="two keys stored")
    produce_and_wait([Outbound(kafka.name("metrics"), {"id": 8, "val": 3.0, "time": T}, key="k")])
    wait_until(lambda: TelemetryOverwrite.objects.count() == 2, message="both overwrites recorded")
    assert set(TelemetryOverwrite.objects.values_list("key", "old_value", "new_value")) == {(7, 1.0, 2.0),
                                                                                             (8, 1.0, 3.0)}
    # An identical reading (a retried POST, a replay) is no overwrite.
    produce_and_wait([Outbound(kafka.name("metrics"), {"id": 8, "val": 3.0, "time": T}, key="k")])
    time.sleep(1.5)
    assert TelemetryOverwrite.objects.count() == 2
    assert proc.poll() is None
