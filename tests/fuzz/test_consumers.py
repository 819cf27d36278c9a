"""Generated hostile messages through every real consumer: all accounted for, the consumer never exits.

For each consumer, FUZZ_EXAMPLES messages drawn by Hypothesis (strategies.py)
are produced to its topic(s) and consumed by a real `run_consumer` process.
Then: the process is still running, its offsets are committed to the end, the
messages it handled equal the messages produced, and the messages it
dead-lettered equal its quarantine records, each with a reason. Where the
effect is easy to predict independently (telemetry rows, sink rows), the
stored rows are compared with what the consumer's own decoder accepts.
"""

from __future__ import annotations

import pytest

from quarantine.models import QuarantineRecord
from streams.activity import consumers as readings
from streams.telemetry import consumers as telemetry
from streams.kafka.producer import Outbound, produce_and_wait
from streams.kafka.registry import Envelope, MessageRejected
from streams.models import ActivityEvent, MachineMetric, SensorReading
from tests.conftest import committed, wait_until
from tests.fuzz.strategies import EXAMPLES, generate, messages

T = 1700000001
ORDER = {"order_id": "o-1", "user_id": "u-1", "product_id": "prod-1", "amount": 10.5,
         "timestamp": "2026-01-05T12:00:00Z"}
VALID = {
    "metrics": {"id": 1, "val": 2.5, "time": T},
    "workorders": {"time": T, "product": 1, "production": 10.0},
    "product_registrations": {"productId": "p1", "productName": "n", "productDescription": "d", "price": 1.0,
                              "currency": "BRL", "stockQuantity": 1, "category": "c"},
    "orders": ORDER,
    "processed_orders": {**ORDER, "product_name": "Laptop", "category": "Computers",
                         "processed_at": "2026-01-05T12:00:01Z"},
    "sensor_data": {"timestamp": "2026-01-05T12:00:00Z", "sensor_id": "s1", "temperature_celsius": 21.0,
                    "humidity_percent": 40.0},
    "user_activity": {"event_timestamp": "2026-01-05T12:00:00Z", "user_id": "u1", "session_id": "s",
                      "action": "click", "details": {"page": "/"}},
    "processed_data": {"type": "sensor", "timestamp": "2026-01-05T12:00:00Z", "sensor_id": "s1",
                       "temperature_celsius": 30.0, "humidity_percent": 10.0, "status": "Warning"},
    "file_events": {"file_path": "nothing-here.csv", "file_name": "x.csv"},
}
CONSUMERS = {
    "telemetry": ["metrics", "workorders"],
    "products": ["product_registrations"],
    "orders": ["orders"],
    "order_windows": ["processed_orders"],
    "standardize": ["sensor_data", "user_activity"],
    "processed_sink": ["processed_data"],
    "files": ["file_events"],
}


def handled(processes, proc) -> tuple[int, int]:
    """(messages, dead-lettered) from the consumer's batch log lines."""
    messages = rejected = 0
    for line in processes.log(proc).splitlines():
        if "consumer_batch " in line:
            messages += int(line.split("messages=")[1].split()[0])
            rejected += int(line.split("rejected=")[1].split()[0])
    return messages, rejected


def accepted_by(decode, topic: str, payloads: list[bytes]) -> list:
    out = []
    for offset, raw in enumerate(payloads):
        try:
            out.append(decode(Envelope(topic=topic, partition=0, offset=offset, key=None, headers=[], raw=raw)))
        except MessageRejected:
            pass
    return out


@pytest.mark.parametrize("name", sorted(CONSUMERS))
def test_generated_messages_are_all_accounted_for(name, kafka, processes, tmp_path, catalog):
    logicals = CONSUMERS[name]
    produced: dict[str, list[bytes]] = {}
    for logical in logicals:
        payloads = generate(messages(VALID[logical]), max(EXAMPLES // len(logicals), 1))
        produced[logical] = payloads
        produce_and_wait([Outbound(kafka.name(logical), raw, key=str(i % 7)) for i, raw in enumerate(payloads)],
                         timeout=60)
    total = sum(len(p) for p in produced.values())
    proc = processes.consumer(name, "--batch-size", "500", "--batch-time", "300",
                              INGEST_INBOX_DIR=str(tmp_path / "inbox"))
    group = f"{kafka.group_prefix}-{name}"

    def caught_up() -> bool:
        assert proc.poll() is None, processes.log(proc)[-3000:]
        done, end = committed(kafka, group, logicals)
        return done == end == total

    wait_until(caught_up, timeout=120, message=f"{name} to commit all {total} offsets")
    wait_until(lambda: handled(processes, proc)[0] == total, timeout=10, message="every message handled once")
    messages_seen, rejected = handled(processes, proc)
    records = QuarantineRecord.objects.filter(consumer=name)
    assert records.count() == rejected, "every dead letter has its quarantine record"
    assert not records.filter(reason="").exists()
    assert proc.poll() is None, "the consumer exited"
    print(f"fuzz {name}: produced={total} handled={messages_seen} applied={total - rejected} quarantined={rejected}")

    if name == "telemetry":
        metrics = accepted_by(telemetry.decode, kafka.name("metrics"), produced["metrics"])
        expected = {(v["parameter_id"], v["time"]) for _kind, v in metrics}
        assert set(MachineMetric.objects.values_list("parameter_id", "time")) == expected
    if name == "processed_sink":
        accepted = accepted_by(readings.decode_processed, kafka.name("processed_data"), produced["processed_data"])
        assert SensorReading.objects.count() + ActivityEvent.objects.count() == len(
            {v["event_id"] for v in accepted})
