"""/metrics from the web server as `make run` starts it, with two workers: whichever worker
answers a scrape, and after a worker dies, a counter never goes back and ends at the total.

The producer's deliveries are counted in each worker (prometheus_client's multiprocess
mode, gunicorn.conf.py); a scrape adds up every worker's file.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client.multiprocess import MultiProcessCollector

from tests.conftest import wait_until
from tests.streams.telemetry.test_api import METRIC
from tests.streams.telemetry.test_asgi import post_json, request

pytestmark = pytest.mark.services

DELIVERED = "console_producer_deliveries_total"


def scraped(port: int) -> dict[str, float]:
    """The deliveries on /metrics, by outcome."""
    status, _, body = request(port, "GET", "/metrics")
    assert status == 200, body[:500]
    return {outcome: float(value) for outcome, value in
            re.findall(rf'^{DELIVERED}\{{outcome="(\w+)"\}} (\S+)$', body.decode(), re.M)}


def per_worker(directory: Path) -> dict[int, float]:
    """Deliveries each worker counted, from its own file: which workers answered the POSTs."""
    counts = {}
    for path in directory.glob("counter_*.db"):
        for metric in MultiProcessCollector.merge([str(path)]):
            for sample in metric.samples:
                if sample.name == DELIVERED and sample.labels == {"outcome": "delivered"}:
                    counts[int(path.stem.split("_")[-1])] = sample.value
    return counts


def an_earlier_server_counted(directory: Path, n: int) -> None:
    """A counter file left by a server that ran before: the next one must start from 0."""
    directory.mkdir()
    subprocess.run([sys.executable, "-c", (
        "from prometheus_client import Counter; "
        f"Counter('console_producer_deliveries', '', ['outcome'], registry=None).labels('delivered').inc({n})")],
        env={"PROMETHEUS_MULTIPROC_DIR": str(directory)}, check=True)
    assert per_worker(directory)


def test_deliveries_never_go_back_whichever_worker_answers(kafka, processes, token, tmp_path):
    directory = tmp_path / "prometheus"
    an_earlier_server_counted(directory, 1000)
    web, port = processes.web("--workers", "2", PROMETHEUS_MULTIPROC_DIR=str(directory))
    assert scraped(port) == {"delivered": 0.0, "failed": 0.0}  # the earlier server's counts are gone

    seen: list[float] = []
    errors: list[str] = []
    stop = threading.Event()

    def scrape_all_along() -> None:
        while not stop.is_set():
            try:
                seen.append(scraped(port)["delivered"])
            except OSError:  # the worker that took it was killed meanwhile
                pass
            except Exception as exc:  # a scrape that failed otherwise fails the test
                errors.append(repr(exc)[:300])
            stop.wait(0.05)

    def post(_n: int) -> int:
        status, _, body = post_json(port, "/api/metrics/", METRIC, token.key)
        assert status == 202, body
        return 1

    def deliver(n: int) -> int:
        with ThreadPoolExecutor(8) as pool:  # concurrent connections: both workers take some
            return sum(pool.map(post, range(n)))

    scraper = threading.Thread(target=scrape_all_along, daemon=True)
    scraper.start()
    try:
        sent = deliver(100)
        for _ in range(10):  # the kernel may give one worker most connections: until both had some
            if len([n for n in per_worker(directory).values() if n]) == 2:
                break
            sent += deliver(50)
        workers = per_worker(directory)
        assert len(workers) == 2 and all(workers.values()) and sum(workers.values()) == sent, (workers, sent)

        os.kill(max(workers), signal.SIGKILL)  # a worker dies: what it counted stays counted
        wait_until(lambda: len(set(per_worker(directory)) - set(workers)) == 1, timeout=60,
                   message="gunicorn to start a worker in place of the killed one")
        sent += deliver(100)
        wait_until(lambda: len(seen) >= 50, message="50 scrapes")
    finally:
        stop.set()
        scraper.join(timeout=30)

    assert not errors, errors
    final = scraped(port)
    assert final == {"delivered": float(sent), "failed": 0.0}, (final, sent)
    drops = [(a, b) for a, b in zip(seen, seen[1:]) if b < a]
    assert not drops, f"the counter went back {len(drops)} times in {len(seen)} scrapes: {drops[:5]}"
    assert seen[-1] <= sent and web.poll() is None
