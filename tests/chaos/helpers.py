"""Shared pieces of the chaos tests: offsets, a REST load, clocks."""

from __future__ import annotations

import http.client
import json
import threading
import time
import uuid
from dataclasses import dataclass, field

from tests.conftest import committed


def caught_up(kafka, group: str, logicals: list[str]) -> bool:
    done, end = committed(kafka, group, logicals)
    return done == end


@dataclass
class Answer:
    thread: int
    event: dict
    status: int | str  # HTTP status, or "error:<exception>" when no answer came
    started: float  # time.monotonic()
    ended: float

    @property
    def latency(self) -> float:
        return self.ended - self.started

    @property
    def key(self) -> tuple[int, int]:
        return self.event["id"], self.event["time"]


@dataclass
class RestLoad:
    """Client threads POSTing single metrics (each with a unique (id, time)) over
    keep-alive http.client connections, paced to `rate` requests/s per thread."""

    port: int
    token: str
    threads: int = 4
    rate: float = 100.0
    base_time: int = 1_650_000_000
    answers: list[Answer] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._workers = [threading.Thread(target=self._run, args=(n,), daemon=True, name=f"rest-load-{n}")
                         for n in range(self.threads)]

    def start(self) -> "RestLoad":
        for worker in self._workers:
            worker.start()
        return self

    def stop(self) -> list[Answer]:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=60)
        return self.answers

    def _run(self, n: int) -> None:
        headers = {"Content-Type": "application/json", "Authorization": f"Token {self.token}"}
        conn: http.client.HTTPConnection | None = None
        seq = 0
        pace = 1.0 / self.rate
        next_at = time.monotonic()
        while not self._stop.is_set():
            seq += 1
            # id = the thread, time = its sequence: (id, time) is unique; the value identifies the event too.
            event = {"id": 100 + n, "val": n * 10_000_000 + seq + 0.25, "time": self.base_time + seq}
            body = json.dumps(event)
            started = time.monotonic()
            status: int | str
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                conn.request("POST", "/api/metrics/", body, headers)
                response = conn.getresponse()
                response.read()
                status = response.status
                if response.getheader("connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as exc:
                status = f"error:{type(exc).__name__}"
                if conn is not None:
                    conn.close()
                conn = None
            ended = time.monotonic()
            with self._lock:
                self.answers.append(Answer(n, event, status, started, ended))
            next_at = max(next_at + pace, ended)
            delay = next_at - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
        if conn is not None:
            conn.close()

    def snapshot(self) -> list[Answer]:
        with self._lock:
            return list(self.answers)


def wall(monotonic_at: float) -> float:
    """A time.monotonic() value as a wall-clock (epoch) time."""
    return time.time() - (time.monotonic() - monotonic_at)


def unique_suffix() -> str:
    return uuid.uuid4().hex[:8]
