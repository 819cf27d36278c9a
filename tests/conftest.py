"""Fixtures for tests against the real services that `make test` starts.

Each test that touches Kafka gets its own topic names and consumer-group
prefix, so tests never see each other's messages. Consumers run as real
`manage.py run_consumer` subprocesses against the test database.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaException, TopicPartition
from django.conf import settings as django_settings
from django.db import connection

from streams.kafka.client import client_config
from streams.kafka.topics import admin_client, ensure_topics

ROOT = Path(__file__).resolve().parent.parent

pytest_plugins = ["tests.api_fixtures"]  # users by role and API clients, for every test that calls the API


def wait_until(predicate: Callable[[], Any], *, timeout: float = 60.0, interval: float = 0.25,
               message: str = "condition") -> Any:
    """Poll until predicate() is truthy; fail the test with `message` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {message}")
        time.sleep(interval)


def database_url_for_subprocesses() -> str:
    """The URL of pytest-django's test database, for subprocesses."""
    d = connection.settings_dict
    return f"postgres://{d['USER']}:{d['PASSWORD']}@{d['HOST']}:{d['PORT']}/{d['NAME']}"


class KafkaNamespace:
    """Unique topic names and consumer groups for one test."""

    def __init__(self, settings, partitions: int = 1) -> None:
        self.suffix = uuid.uuid4().hex[:8]
        self.topics = {
            logical: {"name": f"t-{self.suffix}-{spec['name']}", "partitions": partitions}
            for logical, spec in django_settings.KAFKA_TOPICS.items()
        }
        self.group_prefix = f"test-{self.suffix}"
        self.celery_queue = f"test-{self.suffix}"
        settings.KAFKA_TOPICS = self.topics
        settings.CONSUMER_GROUP_PREFIX = self.group_prefix
        settings.CELERY_TASK_DEFAULT_QUEUE = self.celery_queue
        # The Celery app read its configuration already: point it at this test's queue.
        from console.celery import app as celery_app

        self._previous_queue = celery_app.conf.task_default_queue
        celery_app.conf.task_default_queue = self.celery_queue

    def name(self, logical: str) -> str:
        return str(self.topics[logical]["name"])

    def env(self) -> dict[str, str]:
        env = {f"KAFKA_TOPIC_{logical.upper()}": str(spec["name"]) for logical, spec in self.topics.items()}
        env["CONSUMER_GROUP_PREFIX"] = self.group_prefix
        env["CELERY_TASK_DEFAULT_QUEUE"] = self.celery_queue
        return env

    def read(self, logical: str, *, expected: int, timeout: float = 30.0) -> list[Any]:
        """Read `expected` messages from a topic (from the beginning)."""
        consumer = Consumer(client_config(**{
            "group.id": f"reader-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }))
        consumer.subscribe([self.name(logical)])
        messages: list[Any] = []
        deadline = time.monotonic() + timeout
        try:
            while len(messages) < expected and time.monotonic() < deadline:
                for msg in consumer.consume(num_messages=500, timeout=0.5):
                    if msg.error() is None:
                        messages.append(msg)
        finally:
            consumer.close()
        return messages

    def end_offsets(self, logical: str, *, attempts: int = 40) -> int:
        """The sum of the topic's end offsets. A topic just created may not have its
        partition leaders yet (NOT_LEADER_FOR_PARTITION, LEADER_NOT_AVAILABLE): ask again."""
        consumer = Consumer(client_config(**{"group.id": "offsets-probe"}))
        try:
            for attempt in range(attempts):
                try:
                    meta = consumer.list_topics(self.name(logical), timeout=10).topics[self.name(logical)]
                    total = 0
                    for p in meta.partitions:
                        _low, high = consumer.get_watermark_offsets(TopicPartition(self.name(logical), p),
                                                                    timeout=10)
                        total += high
                    return total
                except KafkaException:
                    if attempt == attempts - 1:
                        raise
                    time.sleep(0.5)
            raise AssertionError("unreachable")
        finally:
            consumer.close()


def committed(kafka: KafkaNamespace, group: str, logicals: list[str]) -> tuple[int, int]:
    """(committed offsets, end offsets) of `group`, summed over the topics' partitions.
    (-1, 0) while the broker cannot say yet (a topic's leaders not elected), so a
    `wait_until` on `done == end` keeps waiting instead of failing."""
    probe = Consumer(client_config(**{"group.id": group, "enable.auto.commit": False}))
    try:
        done = end = 0
        for logical in logicals:
            name = kafka.name(logical)
            meta = probe.list_topics(name, timeout=10).topics[name]
            parts = [TopicPartition(name, p) for p in meta.partitions]
            for tp in probe.committed(parts, timeout=10):
                done += max(tp.offset, 0)
            for tp in parts:
                end += probe.get_watermark_offsets(tp, timeout=10)[1]
        return done, end
    except KafkaException:
        return -1, 0
    finally:
        probe.close()


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers", "kafka_partitions(n): partitions of each of the test's topics (default 1)"
    )


# The fixtures that start or reach Kafka, Redis, a Celery worker, consumers or a browser. A test that
# uses none of them is in the fast tier (pure logic, or PostgreSQL only): `make test-fast`.
SERVICE_FIXTURES = {"kafka", "processes", "live_server", "page", "services", "transactional_db"}
SERVICE_FOLDERS = {"chaos", "fuzz"}


def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        folder = Path(str(item.fspath)).relative_to(ROOT / "tests").parts[0]
        if SERVICE_FIXTURES & set(getattr(item, "fixturenames", ())) or folder in SERVICE_FOLDERS \
                or item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.services)


def pytest_terminal_summary(terminalreporter) -> None:
    """Where each failure or error stopped, last: CI keeps only the tail of the output, and a
    timeout's own traceback is printed above the stacks of every thread."""
    lines = []
    for kind in ("failed", "error"):
        for report in terminalreporter.stats.get(kind, []):
            entries = getattr(getattr(report.longrepr, "reprtraceback", None), "reprentries", None) or []
            places = ["/".join(str(e.reprfileloc.path).split("/")[-2:]) + f":{e.reprfileloc.lineno}"
                      for e in entries[-6:] if getattr(e, "reprfileloc", None)]
            lines.append(f"{kind.upper()} {report.nodeid} ({report.when}): {' < '.join(reversed(places))}")
    if lines:
        terminalreporter.section("where the failures stopped (innermost first)")
        for line in lines:
            terminalreporter.line(line)


@pytest.fixture
def kafka(settings, request) -> Iterator[KafkaNamespace]:
    # One partition per topic unless a test asks for more: every partition
    # costs the broker open files, and a suite creates hundreds of topics.
    marker = request.node.get_closest_marker("kafka_partitions")
    namespace = KafkaNamespace(settings, partitions=marker.args[0] if marker else 1)
    ensure_topics()
    yield namespace
    from console.celery import app as celery_app

    celery_app.conf.task_default_queue = namespace._previous_queue
    # The client must outlive its futures: one collected at once may leave them unresolved for
    # ever (a CI run hung here 300 s) or fail them with _DESTROY (confluent-kafka-python #541, #1298).
    admin = admin_client()
    futures = admin.delete_topics([str(t["name"]) for t in namespace.topics.values()], operation_timeout=30)
    for future in futures.values():
        try:
            future.result(timeout=60)
        except Exception:  # a topic the test deleted itself, or one never created
            pass


class ProcessRunner:
    """Starts console processes (`manage.py ...`) wired to the test database and topics."""

    def __init__(self, kafka: KafkaNamespace, tmp_path: Path) -> None:
        self.kafka = kafka
        self.tmp_path = tmp_path
        self.procs: list[subprocess.Popen] = []

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.kafka.env())
        env["DATABASE_URL"] = database_url_for_subprocesses()
        env["PYTHONUNBUFFERED"] = "1"
        env.update(extra)
        return env

    def start(self, *args: str, log_name: str | None = None, **extra_env: str) -> subprocess.Popen:
        log_path = self.tmp_path / f"{log_name or args[0]}-{len(self.procs)}.log"
        log = open(log_path, "wb")
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), *args],
            cwd=ROOT, env=self.env(**extra_env), stdout=log, stderr=subprocess.STDOUT,
        )
        proc.log_path = log_path  # type: ignore[attr-defined]
        self.procs.append(proc)
        return proc

    def celery_worker(self, *extra: str, **extra_env: str) -> subprocess.Popen:
        """A real Celery worker consuming this test's queue only."""
        log_path = self.tmp_path / f"celery-{len(self.procs)}.log"
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "celery"), "-A", "console", "worker", "--loglevel=INFO",
             "--concurrency=2", "--without-gossip", "--without-mingle", "-Q", self.kafka.celery_queue, *extra],
            cwd=ROOT, env=self.env(**extra_env), stdout=open(log_path, "wb"), stderr=subprocess.STDOUT,
        )
        proc.log_path = log_path  # type: ignore[attr-defined]
        self.procs.append(proc)
        return proc

    def web(self, *extra: str, **extra_env: str) -> tuple[subprocess.Popen, int]:
        """The web process as `make run` starts it (gunicorn, uvicorn worker, console.asgi), on a free
        port; returns once it answers HTTP (any status: /healthz is 503 while Kafka is down)."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        log_path = self.tmp_path / f"web-{len(self.procs)}.log"
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), "console.asgi:application", "-c",
             str(ROOT / "gunicorn.conf.py"), "--bind", f"127.0.0.1:{port}", "--workers", "1", *extra],
            cwd=ROOT, env=self.env(**extra_env), stdout=open(log_path, "wb"), stderr=subprocess.STDOUT,
        )
        proc.log_path = log_path  # type: ignore[attr-defined]
        self.procs.append(proc)

        def answers() -> bool:
            assert proc.poll() is None, self.log(proc)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
            try:
                conn.request("GET", "/healthz")
                conn.getresponse().read()
                return True
            except OSError:
                return False
            finally:
                conn.close()

        wait_until(answers, timeout=60)
        return proc, port

    def consumer(self, name: str, *extra: str, **extra_env: str) -> subprocess.Popen:
        return self.start("run_consumer", name, *extra, log_name=f"consumer-{name}", **extra_env)

    @staticmethod
    def log(proc: subprocess.Popen) -> str:
        return Path(proc.log_path).read_text(errors="replace")  # type: ignore[attr-defined]

    def stop(self, proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return proc.returncode

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                self.stop(proc, signal.SIGTERM, timeout=20)


@pytest.fixture
def processes(kafka: KafkaNamespace, tmp_path: Path, transactional_db) -> Iterator[ProcessRunner]:
    runner = ProcessRunner(kafka, tmp_path)
    yield runner
    runner.stop_all()


@pytest.fixture
def catalog(db) -> None:
    """The seed's demo catalog (streams.orders.demo): prod-1 Laptop .. prod-5 Keyboard. For the
    orders pipeline's tests and every test that sends orders through a consumer (the fuzzing too)."""
    from streams.orders.demo import catalog_seed_demo

    catalog_seed_demo(count=5)
