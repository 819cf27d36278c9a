"""What a crashed group member costs, under each group protocol librdkafka offers.

    .venv/bin/python bench/rebalance.py [--partitions 6] [--members 3] [--rate 3000]

For each protocol it creates a fresh topic, produces a steady stream keyed over
every partition, and runs a group of bare confluent-kafka consumers, each a
process of its own. Once they all consume it SIGKILLs one member, restarts it a
few seconds later (the same `group.instance.id` where static membership is on),
and reports, from the consumed messages' timestamps:

  * the longest gap between messages consumed by the surviving members,
    from the kill to the end (how long the group stopped);
  * how long after the restart the killed member's partitions were consumed
    again (what a crash costs).

Protocols: classic eager (range), classic cooperative-sticky, each with and
without static membership, and KIP-848's `group.protocol=consumer`, with and
without it. No database, no console code: it measures the broker and client.
Not a test: it prints the figures docs/kafka.md quotes.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import signal
import sys
import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = Path(__file__).resolve().parent.parent


def bootstrap() -> str:
    env = ROOT / ".env"
    if "KAFKA_BOOTSTRAP_SERVERS" in os.environ:
        return os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    for line in env.read_text().splitlines() if env.exists() else []:
        if line.startswith("KAFKA_BOOTSTRAP_SERVERS="):
            return line.split("=", 1)[1]
    return "127.0.0.1:59092"


PROTOCOLS = {
    "eager": {"partition.assignment.strategy": "range"},
    "eager+static": {"partition.assignment.strategy": "range", "static": True},
    "cooperative": {"partition.assignment.strategy": "cooperative-sticky"},
    "cooperative+static": {"partition.assignment.strategy": "cooperative-sticky", "static": True},
    "kip848": {"group.protocol": "consumer"},
    "kip848+static": {"group.protocol": "consumer", "static": True},
}


def member(servers: str, topic: str, group: str, config: dict, instance: str, out: str, session_ms: int) -> None:
    conf = {"bootstrap.servers": servers, "group.id": group, "auto.offset.reset": "latest",
            "enable.auto.commit": True, "auto.commit.interval.ms": 200}
    conf.update({k: v for k, v in config.items() if k != "static"})
    if config.get("group.protocol") != "consumer":
        conf["session.timeout.ms"] = session_ms
        conf["heartbeat.interval.ms"] = max(session_ms // 10, 300)
    if config.get("static"):
        conf["group.instance.id"] = instance
    conf["error_cb"] = lambda err: print(f"{instance}: {err}", file=sys.stderr, flush=True)
    consumer = Consumer(conf)
    consumer.subscribe([topic])
    with open(out, "a") as log:
        while True:
            seen: dict[int, int] = {}
            for message in consumer.consume(num_messages=1000, timeout=0.1):
                if message.error() is None:
                    seen[message.partition()] = seen.get(message.partition(), 0) + 1
                else:
                    print(f"{instance}: {message.error()}", file=sys.stderr, flush=True)
            if seen:
                log.write(json.dumps({"t": time.time(), "who": instance, "parts": sorted(seen)}) + "\n")
                log.flush()


def produce(servers: str, topic: str, partitions: int, rate: int, stop: mp.Event) -> None:
    producer = Producer({"bootstrap.servers": servers, "linger.ms": 5})
    i = 0
    while not stop.is_set():
        started = time.monotonic()
        for _ in range(rate // 20):
            producer.produce(topic, b"x", partition=i % partitions)
            i += 1
        producer.poll(0)
        time.sleep(max(0.0, 0.05 - (time.monotonic() - started)))
    producer.flush(10)


def scenario(name: str, config: dict, args: argparse.Namespace, servers: str, workdir: Path) -> dict:
    topic = f"bench-rebalance-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": servers})
    for future in admin.create_topics([NewTopic(topic, args.partitions, 1)]).values():
        future.result(timeout=30)
    group = f"bench-rebalance-{name}-{uuid.uuid4().hex[:6]}"
    out = str(workdir / f"{name}.jsonl")
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    producer = ctx.Process(target=produce, args=(servers, topic, args.partitions, args.rate, stop))
    producer.start()
    procs = {}
    for n in range(args.members):
        who = f"m{n}"
        procs[who] = ctx.Process(target=member, args=(servers, topic, group, config, who, out, args.session_ms))
        procs[who].start()
    time.sleep(args.warmup)
    victim = "m0"
    killed = time.time()
    os.kill(procs[victim].pid, signal.SIGKILL)
    procs[victim].join()
    time.sleep(args.down)
    restarted = time.time()
    procs[victim] = ctx.Process(target=member, args=(servers, topic, group, config, victim, out, args.session_ms))
    procs[victim].start()
    time.sleep(args.after)
    for proc in procs.values():
        proc.kill()
        proc.join()
    stop.set()
    producer.join()
    for future in admin.delete_topics([topic]).values():
        try:
            future.result(timeout=30)
        except Exception:
            pass
    rows = [json.loads(line) for line in open(out)]
    survivors = sorted(r["t"] for r in rows if r["who"] != victim and r["t"] >= killed)
    gaps = [b - a for a, b in zip([killed] + survivors, survivors + [killed + args.down + args.after])]
    # The killed member's partitions: when each was consumed again (by anyone) after the kill.
    before = {p for r in rows if r["who"] == victim and r["t"] < killed for p in r["parts"]}
    resumed = {p: min((r["t"] for r in rows if r["t"] > killed + 0.5 and p in r["parts"]), default=None)
               for p in before}
    last = max(resumed.values(), default=None) if None not in resumed.values() else None
    return {
        "protocol": name,
        "survivors_longest_gap_s": round(max(gaps), 2),
        "killed_partitions_all_back_after_restart_s": round(last - restarted, 2) if last else "not in the run",
        "restarted_member_consumed": any(r["who"] == victim and r["t"] >= restarted for r in rows),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--rate", type=int, default=3000, help="messages/s produced")
    parser.add_argument("--session-ms", type=int, default=45000, help="classic protocol session.timeout.ms")
    parser.add_argument("--warmup", type=float, default=8.0)
    parser.add_argument("--down", type=float, default=3.0, help="seconds between the kill and the restart")
    parser.add_argument("--after", type=float, default=25.0, help="seconds measured after the restart")
    parser.add_argument("--only", nargs="*", default=list(PROTOCOLS))
    args = parser.parse_args()
    servers = bootstrap()
    workdir = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-rebalance-{uuid.uuid4().hex[:6]}"
    workdir.mkdir(parents=True)
    print(f"{args.members} members, {args.partitions} partitions, {args.rate} msgs/s, member m0 SIGKILLed, "
          f"restarted {args.down:.0f} s later, measured {args.after:.0f} s more; session {args.session_ms} ms")
    for name in args.only:
        print(json.dumps(scenario(name, PROTOCOLS[name], args, servers, workdir)), flush=True)


if __name__ == "__main__":
    sys.exit(main())
