"""Quarantine bulk actions vs one record at a time, on the real broker and database.

    .venv/bin/python bench/quarantine_bulk.py [--records 2000] [--baseline 200]

Creates message records pointing at a throw-away topic in the configured
database, re-drives / discards them, prints records per second for the
per-record services (the baseline) and the bulk ones, then deletes the
records and the topic. Takes well under a minute.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")

import django  # noqa: E402

django.setup()

from confluent_kafka.admin import NewTopic  # noqa: E402

from quarantine import services  # noqa: E402
from quarantine.models import QuarantineRecord  # noqa: E402
from streams.kafka.topics import admin_client  # noqa: E402


def make_records(topic: str, n: int, tag: str) -> list[QuarantineRecord]:
    base = int(time.time() * 1000) % 1_000_000_000
    return QuarantineRecord.objects.bulk_create([
        QuarantineRecord(source="message", reason="bench", errors=[{"field": "id", "rule": "integer"}],
                         error_count=1, consumer=f"bench-{tag}", topic=topic, partition=0, offset=base + i,
                         message_key=str(i).encode(), payload=b'{"id":"x","val":1,"time":1624378100}')
        for i in range(n)
    ])


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:10.0f} records/s ({n} in {seconds:.2f}s)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2000, help="Records for the bulk runs.")
    parser.add_argument("--baseline", type=int, default=200, help="Records for the one-at-a-time runs.")
    args = parser.parse_args()

    topic = f"bench-quarantine-{uuid.uuid4().hex[:8]}"
    admin = admin_client()
    for future in admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)]).values():
        future.result()
    tag = uuid.uuid4().hex[:6]
    try:
        figures = {}
        for action in ("release", "discard"):
            single = make_records(topic, args.baseline, tag)
            started = time.perf_counter()
            for record in single:
                if action == "release":
                    services.quarantine_release(record=record, by=None, reason="bench")
                else:
                    services.quarantine_discard(record=record, by=None, reason="bench")
            figures[(action, "single")] = (args.baseline, time.perf_counter() - started)

            bulk = make_records(topic, args.records, tag + "b")
            started = time.perf_counter()
            selection = QuarantineRecord.objects.filter(pk__in=[r.pk for r in bulk])
            if action == "release":
                result = services.quarantine_release_many(records=selection, by=None, reason="bench")
            else:
                result = services.quarantine_discard_many(records=selection, by=None, reason="bench")
            assert result.succeeded == args.records, result.summary()
            figures[(action, "bulk")] = (args.records, time.perf_counter() - started)
            QuarantineRecord.objects.filter(consumer__startswith=f"bench-{tag}").delete()

        print(f"quarantine bulk actions (topic {topic}, 3 partitions)")
        for action in ("release", "discard"):
            n1, t1 = figures[(action, "single")]
            n2, t2 = figures[(action, "bulk")]
            ratio = (n2 / t2) / (n1 / t1)
            print(f"  {action:<8} one at a time: {rate(n1, t1)}")
            print(f"  {action:<8} bulk:          {rate(n2, t2)}   x{ratio:.1f} vs one at a time")
    finally:
        QuarantineRecord.objects.filter(consumer__startswith=f"bench-{tag}").delete()
        admin.delete_topics([topic], operation_timeout=10)


if __name__ == "__main__":
    main()
