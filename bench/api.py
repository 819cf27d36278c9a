"""Benchmark of the event API under gunicorn on loopback (not a test; prints figures).

    .venv/bin/python bench/api.py [--duration 10] [--connections 64] [--workers 3] [--threads 16]

Starts gunicorn (uvicorn workers on console.asgi, or gthread on console.wsgi with
--server wsgi; with the repository's gunicorn.conf.py) on a free port against this checkout's database and
Kafka, with bench-only topic names (deleted afterwards) and a service token,
then measures:

1. single-event POST /api/metrics/ with `wrk` (Debian package) and
   bench/post_metric.lua: requests/s, p50/p99 latency, for 1 connection
   (the baseline) and for --connections;
2. batch POSTs (JSON arrays of --batch events) from Python threads: events/s.

Every 202 means Kafka acknowledged the events. Bounded by --duration per phase.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def manage(*args: str, env: dict[str, str]) -> str:
    return subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True,
                          text=True).stdout


def wait_http(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/api/")
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not come up")


def parse_wrk(out: str) -> dict[str, float]:
    def ms(text: str) -> float:
        value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}
    for pct in ("50", "99"):
        result[f"p{pct}_ms"] = ms(re.search(rf"\s{pct}(?:\.000)?%\s+(\S+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result["non_2xx"] = int(non2xx.group(1)) if non2xx else 0
    errors = re.search(r"Socket errors: (.*)", out)
    result["socket_errors"] = errors.group(1) if errors else "none"
    result["requests"] = int(re.search(r"(\d+) requests in", out).group(1))
    return result


def cpu_ticks(pids: list[int]) -> int:
    """utime+stime (with reaped children) of processes, in clock ticks."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(f) for f in fields[11:15])
        except (OSError, IndexError, ValueError):
            pass
    return total


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


SERVERS = {  # --server: worker class, the console's entry point, the empty app of the baseline
    "asgi": ("uvicorn_worker.UvicornWorker", "console.asgi:application", "empty_asgi:application"),
    "wsgi": ("gthread", "console.wsgi:application", "empty_wsgi:application"),
}


def start_gunicorn(app: str, port: int, args, env: dict[str, str], chdir: Path = ROOT) -> subprocess.Popen:
    return subprocess.Popen(
        [str(Path(PY).parent / "gunicorn"), app, "-c", str(ROOT / "gunicorn.conf.py"), "--chdir", str(chdir),
         "--bind", f"127.0.0.1:{port}",
         "--workers", str(args.workers), "--worker-class", SERVERS[args.server][0], "--threads", str(args.threads),
         "--backlog", "2048", "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


def run_wrk(port: int, token: str, *, connections: int, threads: int, duration: int,
            server: subprocess.Popen | None = None) -> dict[str, float]:
    workers = children(server.pid) if server else []
    before = cpu_ticks(workers)
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "5s",
         "-s", str(ROOT / "bench" / "post_metric.lua"), f"http://127.0.0.1:{port}/api/metrics/"],
        env={**os.environ, "TOKEN": token}, capture_output=True, text=True, check=True,
    ).stdout
    result = parse_wrk(out)
    ticks = cpu_ticks(workers) - before
    result["cpu_us_per_request"] = ticks * 1e6 / os.sysconf("SC_CLK_TCK") / max(result["requests"], 1)
    return result


def run_batches(port: int, token: str, *, batch: int, clients: int, duration: float) -> dict[str, float]:
    body = json.dumps([{"id": i % 20, "val": i * 0.25, "time": 1624378100 + i} for i in range(batch)]).encode()
    headers = {"Content-Type": "application/json", "Authorization": f"Token {token}"}
    totals = {"events": 0, "requests": 0, "failures": 0}
    lock = threading.Lock()
    stop = time.monotonic() + duration

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.monotonic() < stop:
            conn.request("POST", "/api/metrics/", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            with lock:
                totals["requests"] += 1
                if response.status == 202:
                    totals["events"] += batch
                else:
                    totals["failures"] += 1

    started = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    return {**totals, "events_per_s": totals["events"] / elapsed, "seconds": elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="Seconds per phase (default 10).")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32).")
    parser.add_argument("--wrk-threads", type=int, default=2, help="wrk threads (default 2).")
    parser.add_argument("--server", choices=sorted(SERVERS), default="asgi",
                        help="asgi: uvicorn workers on console.asgi (the default, as in make run); "
                             "wsgi: gthread on console.wsgi.")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2).")
    parser.add_argument("--threads", type=int, default=16, help="gunicorn threads per worker (default 16).")
    parser.add_argument("--batch", type=int, default=5000, help="Events per batch request (default 5000).")
    parser.add_argument("--batch-clients", type=int, default=4, help="Concurrent batch clients (default 4).")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: `make bench-api` installs it (Debian's wrk)")

    suffix = uuid.uuid4().hex[:6]
    topic = f"bench-{suffix}-metrics"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "console.settings", "KAFKA_TOPIC_METRICS": topic,
           "DEBUG": "false", "LOG_LEVEL": "WARNING"}
    sys.path.insert(0, str(ROOT))
    os.environ.update({k: env[k] for k in ("KAFKA_TOPIC_METRICS", "DJANGO_SETTINGS_MODULE")})
    import django

    django.setup()
    from streams.kafka.topics import admin_client, ensure_topics

    ensure_topics()
    token = manage("create_service_token", "bench-client", "--quiet", env=env).strip()
    worker_class, console_app, empty_app = SERVERS[args.server]
    shape = f"threads={args.threads}" if args.server == "wsgi" else "one event loop each"
    print(f"gunicorn {worker_class} workers={args.workers} ({shape}); topic {topic}; "
          f"{os.cpu_count()} CPUs shared with Kafka, PostgreSQL, the load generator (and other work: "
          f"load average {os.getloadavg()[0]:.1f} at the start)")
    # Baseline: the same server and load on an empty WSGI app (the server's own ceiling).
    port = free_port()
    empty = start_gunicorn(empty_app, port, args, env, chdir=ROOT / "bench")
    try:
        wait_http(port)
        ceiling = run_wrk(port, token, connections=args.connections, threads=args.wrk_threads,
                          duration=max(args.duration // 2, 3), server=empty)
    finally:
        stop(empty)
    print(f"empty {args.server.upper()} app, {args.connections} connections:  {ceiling['rps']:8.0f} req/s  "
          f"p50 {ceiling['p50_ms']:.2f} ms  p99 {ceiling['p99_ms']:.2f} ms  "
          f"server CPU {ceiling['cpu_us_per_request']:.0f} us/request (the server's ceiling)")
    port = free_port()
    gunicorn = start_gunicorn(console_app, port, args, env)
    try:
        wait_http(port)
        # Warm up every worker (producer connection, token cache).
        run_wrk(port, token, connections=args.workers * 4, threads=1, duration=2)
        base = run_wrk(port, token, connections=1, threads=1, duration=max(args.duration // 2, 3))
        print(f"single POST, 1 connection (baseline): {base['rps']:8.0f} req/s  p50 {base['p50_ms']:.2f} ms  "
              f"p99 {base['p99_ms']:.2f} ms  non-2xx {base['non_2xx']}")
        load = run_wrk(port, token, connections=args.connections, threads=args.wrk_threads, duration=args.duration,
                       server=gunicorn)
        print(f"single POST, {args.connections} connections:      {load['rps']:8.0f} req/s  "
              f"p50 {load['p50_ms']:.2f} ms  p99 {load['p99_ms']:.2f} ms  non-2xx {load['non_2xx']}  "
              f"socket errors {load['socket_errors']}  server CPU {load['cpu_us_per_request']:.0f} us/request  "
              f"({load['rps'] / base['rps']:.1f}x 1 connection, {load['rps'] / ceiling['rps']:.0%} of the "
              f"empty app)")
        batches = run_batches(port, token, batch=args.batch, clients=args.batch_clients, duration=args.duration)
        print(f"batch POST ({args.batch} events, {args.batch_clients} clients): {batches['events_per_s']:10.0f} "
              f"events/s  requests {batches['requests']}  failures {batches['failures']}  "
              f"({batches['events_per_s'] / load['rps']:.0f}x the single-event rate)")
        single_met = load["rps"] >= 6000 and load["p99_ms"] <= 25
        print(f"target: single POST >= 6,000 req/s with p99 <= 25 ms: {'met' if single_met else 'NOT met'} "
              f"({load['rps']:,.0f} req/s, p99 {load['p99_ms']:.1f} ms); batches >= 250,000 events/s: "
              f"{'met' if batches['events_per_s'] >= 250_000 else 'NOT met'} ({batches['events_per_s']:,.0f}/s)")
    finally:
        stop(gunicorn)
        try:  # wait for the deletion: the process exits right after
            admin = admin_client()  # keep the client alive until the future resolves
            for future in admin.delete_topics([topic], operation_timeout=10).values():
                future.result(timeout=15)
        except Exception as exc:
            print(f"could not delete the bench topic {topic}: {exc}")


if __name__ == "__main__":
    main()
