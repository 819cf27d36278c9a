"""Benchmark of file ingestion: the whole path on the real services.

    make bench-ingest            (or: .venv/bin/python bench/ingest.py --rows 1000000)

1. Generates a contract CSV of --rows rows, --bad-share of them bad in the
   shapes the sample files show (empty values, INVALID, temp = -100), and a
   copy holding only the valid rows (for the baseline).
2. Runs the pipeline as in production, in its own database (<db>_bench),
   topics and Celery queue: `run_consumer files` and a Celery worker; the
   file is announced on file_events, the consumer registers it and queues
   process_file, which validates, COPYs and aggregates. Partial acceptance is
   on (threshold 1%), so the valid rows load and the bad ones are quarantined.
3. Baseline in the same run: the same valid rows through `psql \\copy` into an
   equivalent table without indexes, constraints or validation.
4. Also runs sample files through the same pipeline (make_samples', or SENSOR_SAMPLES=DIR).

Prints rows/s end to end (event -> rows loaded -> per-file aggregates), the
overall-aggregate refresh, the worker's peak RSS and the ratio to \\copy.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# Sample files to run after the big one: SENSOR_SAMPLES=DIR, or the console's own
# (`manage.py make_samples`, written into the benchmark's work folder).
SAMPLES_ENV = os.environ.get("SENSOR_SAMPLES")

HEADER = '"ts","device","co","humidity","light","lpg","motion","smoke","temp"\n'
DEVICES = ["b8:27:eb:bf:9d:51", "00:0f:00:70:91:0a", "1c:bf:ce:15:ec:4d"]
BAD_ROWS = [
    '"","","","","","","","INVALID",""\n',
    '"","","","","","","","","-100.0"\n',
    '"{ts!r}","{dev}","0.0049","51.0","False","0.0076","False","0.0204","-100.0"\n',
]


def generate(path: Path, clean: Path, rows: int, bad_share: float, seed: int = 7) -> int:
    """Write `rows` rows (bad ones included) to path and the valid ones to clean."""
    rng = random.Random(seed)
    bad_every = int(1 / bad_share) if bad_share > 0 else 0
    ts = 1594512094.3859746
    bad = 0
    with open(path, "w") as out, open(clean, "w") as ok:
        out.write(HEADER)
        ok.write(HEADER)
        batch, clean_batch = [], []
        for i in range(rows):
            ts += 0.37
            if bad_every and i % bad_every == bad_every // 2:
                batch.append(BAD_ROWS[bad % len(BAD_ROWS)].format(ts=ts, dev=DEVICES[i % 3]))
                bad += 1
            else:
                line = (f'"{ts!r}","{DEVICES[i % 3]}","{rng.uniform(0.001, 0.012)!r}","{rng.uniform(1, 99)!r}",'
                        f'"{"True" if rng.random() < 0.3 else "False"}","{rng.uniform(0.003, 0.015)!r}",'
                        f'"{"True" if rng.random() < 0.01 else "False"}","{rng.uniform(0.01, 0.04)!r}",'
                        f'"{rng.uniform(0, 35)!r}"\n')
                batch.append(line)
                clean_batch.append(line)
            if len(batch) >= 50_000:
                out.write("".join(batch))
                ok.write("".join(clean_batch))
                batch, clean_batch = [], []
        out.write("".join(batch))
        ok.write("".join(clean_batch))
    return bad


def bench_database_url(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "_bench"))


def ensure_database(url: str, bench_url: str) -> None:
    import psycopg2

    name = urlsplit(bench_url).path.lstrip("/")
    conn = psycopg2.connect(url)
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if cursor.fetchone() is None:
            cursor.execute(f'CREATE DATABASE "{name}"')
    conn.close()


def peak_rss_mb(pid: int) -> float:
    """Peak resident set (VmHWM) of a process and its children, the largest one."""
    pids = [pid]
    try:
        pids += [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        pass
    peak = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
        except OSError:
            pass
    return peak / 1024


def psql_copy(url: str, csv_path: Path, *, like_raw_table: bool = False) -> float:
    """Seconds for `psql \\copy` of the file into a fresh table: unindexed (the
    baseline), or shaped like the raw data table (its indexes, identity and
    generated column: what the same rows as CSV cost PostgreSQL in our table)."""
    table = "bench_copy_baseline"
    columns = "ts, device, co, humidity, light, lpg, motion, smoke, temp"
    if like_raw_table:
        ddl = (f"DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (LIKE ingest_sensorreading INCLUDING ALL); "
               f"ALTER TABLE {table} ALTER COLUMN file_id SET DEFAULT 0;")
    else:
        ddl = (f"DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (ts double precision, device text, "
               "co double precision, humidity double precision, light boolean, lpg double precision, "
               "motion boolean, smoke double precision, temp double precision);")
    quiet = {**os.environ, "PGOPTIONS": "-c client_min_messages=warning"}
    subprocess.run(["psql", url, "-q", "-c", ddl], check=True, env=quiet)
    started = time.perf_counter()
    subprocess.run(["psql", url, "-q", "-c", f"\\copy {table} ({columns}) FROM '{csv_path}' WITH (FORMAT csv, HEADER true)"],
                   check=True, env=quiet)
    seconds = time.perf_counter() - started
    subprocess.run(["psql", url, "-q", "-c", f"DROP TABLE {table}"], check=True, env=quiet)
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="Rows in the generated file.")
    parser.add_argument("--bad-share", type=float, default=0.001, help="Share of bad rows (default 0.1%%).")
    parser.add_argument("--keep", action="store_true", help="Keep the generated files and the loaded rows.")
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
    import environ

    environ.Env.read_env(str(ROOT / ".env"), overwrite=False)
    main_url = os.environ["DATABASE_URL"]
    bench_url = bench_database_url(main_url)
    ensure_database(main_url, bench_url)
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    suffix = uuid.uuid4().hex[:8]
    env = {
        "DATABASE_URL": bench_url,
        "INGEST_INBOX_DIR": str(work / "inbox"),
        "INGEST_QUARANTINE_DIR": str(work / "quarantine"),
        "INGEST_PARTIAL_ACCEPTANCE": "true",
        "INGEST_MAX_REJECTED_SHARE": "0.01",
        "KAFKA_TOPIC_FILE_EVENTS": f"bench-{suffix}-file_events",
        "KAFKA_TOPIC_DEAD_LETTERS": f"bench-{suffix}-dead-letters",
        "CONSUMER_GROUP_PREFIX": f"bench-{suffix}",
        "CELERY_TASK_DEFAULT_QUEUE": f"bench-{suffix}",
        "PYTHONUNBUFFERED": "1",
    }
    os.environ.update(env)
    (work / "inbox").mkdir()
    (work / "quarantine").mkdir()

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from ingest.models import IngestedFile, RawSensorReading, SensorAggregate
    from ingest.services import file_event
    from streams.kafka.producer import produce_and_wait
    from streams.kafka.topics import admin_client, topic_name

    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE ingest_sensorreading, ingest_sensoraggregate, ingest_ingestedfile, "
                       "ingest_inboxentry CASCADE")
    from confluent_kafka.admin import NewTopic

    kafka_admin = admin_client()
    for future in kafka_admin.create_topics([NewTopic(topic_name("file_events"), 1, 1),
                                             NewTopic(topic_name("dead_letters"), 1, 1)]).values():
        future.result(timeout=30)

    print(f"generating {args.rows:,} rows ({args.bad_share:.2%} bad) in {work} ...", flush=True)
    big, clean = work / "inbox" / "bench.csv", work / "clean.csv"
    bad = generate(big, clean, args.rows, args.bad_share)
    size_mb = big.stat().st_size / 1e6
    print(f"  {size_mb:.0f} MB, {bad:,} bad rows", flush=True)

    python = sys.executable
    logs = work / "logs"
    logs.mkdir()
    procs: list[subprocess.Popen] = []

    def start(cmd: list[str], name: str) -> subprocess.Popen:
        proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env}, stdout=open(logs / f"{name}.log", "wb"),
                                stderr=subprocess.STDOUT)
        procs.append(proc)
        return proc

    start([python, "manage.py", "run_consumer", "files", "--batch-time", "50"], "consumer")
    worker = start([str(Path(python).parent / "celery"), "-A", "console", "worker", "--concurrency=1",
                    "--without-gossip", "--without-mingle", "-Q", env["CELERY_TASK_DEFAULT_QUEUE"],
                    "--loglevel=WARNING"], "worker")
    try:
        time.sleep(6)  # consumer subscribed, worker ready

        def run_file(rel: str, timeout: float = 600) -> tuple[IngestedFile, float, float]:
            started = time.perf_counter()
            published_at = timezone.now()
            produce_and_wait([file_event(file_path=rel, file_name=Path(rel).name)])
            deadline = time.monotonic() + timeout
            while True:
                f = IngestedFile.objects.filter(path=rel).first()
                if f and f.status not in IngestedFile.IN_PROGRESS:
                    break
                if time.monotonic() > deadline:
                    raise SystemExit(f"timed out waiting for {rel}; see {logs}")
                time.sleep(0.02)
            loaded_at = time.perf_counter()
            seen_at = timezone.now()
            if f.status == "loaded" and f.rows_loaded:
                while not SensorAggregate.objects.filter(file__isnull=True, updated_at__gte=f.finished_at).exists():
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.02)
            f.refresh_from_db()
            f.hops = {  # where the time before and after the task went
                "event -> registered": (f.created_at - published_at).total_seconds(),
                "registered -> task started": (f.started_at - f.created_at).total_seconds() if f.started_at else None,
                "task finished -> seen": (seen_at - f.finished_at).total_seconds() if f.finished_at else None,
            }
            return f, loaded_at - started, time.perf_counter() - loaded_at

        if SAMPLES_ENV:
            samples = sorted(Path(SAMPLES_ENV).glob("*.csv"))
        else:
            import random

            from console.demo.samples import sensor_samples

            samples = sensor_samples(work / "samples", random.Random(2026))
        print("\nsample files (same pipeline):")
        for sample in samples:
            shutil.copyfile(sample, work / "inbox" / sample.name)
            f, seconds, _ = run_file(sample.name)
            first = f.errors[0] if f.errors else {}
            detail = (f"line {first.get('line')} column {first.get('column')} rule {first.get('rule')}"
                      if first else "")
            print(f"  {sample.name:14} {f.status:12} rows {f.rows_total:>6,} loaded {f.rows_loaded:>6,} "
                  f"{seconds:5.2f}s {detail}")

        print(f"\n{args.rows:,}-row file, event -> rows loaded -> aggregates:", flush=True)
        f, seconds, overall_seconds = run_file("bench.csv")
        rss = peak_rss_mb(worker.pid)
        loaded = RawSensorReading.objects.filter(file=f).count()
        assert loaded == f.rows_loaded == args.rows - bad, (loaded, f.rows_loaded, f.status, f.reason)
        rate = f.rows_loaded / seconds
        print(f"  status {f.status}, {f.rows_loaded:,} rows loaded, {f.rows_rejected:,} rejected "
              f"(quarantine record #{f.quarantine_id})")
        print(f"  end to end      {seconds:6.2f} s   {rate:>10,.0f} rows/s   "
              f"(task: validate + COPY + per-file aggregates {f.load_seconds:.2f} s)")
        print(f"  phases (s): {f.timings}")
        print("  before and after the task (s): " + ", ".join(
            f"{k} {v:.3f}" for k, v in f.hops.items() if v is not None))
        print(f"  overall aggregates refreshed {overall_seconds:.2f} s after the load (separate task)")
        print(f"  worker peak RSS {rss:6.0f} MB")

        copy_seconds = psql_copy(bench_url, clean)
        copy_rate = (args.rows - bad) / copy_seconds
        print(f"\nbaseline: psql \\copy of the same {args.rows - bad:,} valid rows into an unindexed table")
        print(f"  \\copy           {copy_seconds:6.2f} s   {copy_rate:>10,.0f} rows/s")
        like_seconds = psql_copy(bench_url, clean, like_raw_table=True)
        print(f"  (\\copy of the CSV into a table like the raw one, with its identity, BRIN indexes and generated "
              f"column: {like_seconds:.2f} s, {(args.rows - bad) / like_seconds:,.0f} rows/s)")
        print(f"\nratio end to end / \\copy: {rate / copy_rate:.2f}x")
        ingest_met = rate >= 400_000 and rate / copy_rate >= 1.5 and rss <= 250
        print(f"target: >= 1.5x \\copy, >= 400,000 rows/s, worker RSS <= 250 MB: {'met' if ingest_met else 'NOT met'} "
              f"({rate / copy_rate:.2f}x, {rate:,.0f} rows/s, {rss:.0f} MB)")
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        admin = admin_client()  # kept until its futures are resolved
        for future in admin.delete_topics([topic_name("file_events"), topic_name("dead_letters")]).values():
            try:
                future.result(timeout=60)
            except Exception as exc:
                print(f"cleanup: {exc}", file=sys.stderr)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
            with connection.cursor() as cursor:
                cursor.execute("TRUNCATE ingest_sensorreading, ingest_sensoraggregate, ingest_ingestedfile, "
                               "ingest_inboxentry CASCADE")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
