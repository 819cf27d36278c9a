"""Shared pieces of the chaos tests: offsets, a REST load, clocks, a SIGKILL loop under load."""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from streams.kafka.producer import produce_and_wait
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


def kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL a process and (a Celery worker's pool) its children, children first."""
    try:
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    except OSError:
        children = []
    for child in children:
        try:
            os.kill(int(child), signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


@dataclass
class KillRun:
    """What `kill_under_load` did: when each process was killed, and the phase's bounds."""

    current: dict[str, subprocess.Popen]  # the processes running now, by name
    kills: dict[str, list[float]]  # time.monotonic() of each kill, by name
    began: float
    kills_done: float


def kill_under_load(*, processes, start: Callable[[str], subprocess.Popen], started: Callable[[str, str], bool],
                    names: Sequence[str], slices: Sequence[Sequence], pause: float, kills: int,
                    uptime: tuple[float, float]) -> KillRun:
    """Produce `slices` one after another (`pause` s apart) while one thread per name
    SIGKILLs that process `kills` times, each once it said it started (`started(name,
    its log)`) and ran a random `uptime`, and starts it again at once. Fails when a
    process exits by itself or a thread gets stuck."""
    current = {name: start(name) for name in names}
    done: dict[str, list[float]] = {name: [] for name in names}
    errors: list[BaseException] = []
    stop = threading.Event()

    def produce_load() -> None:
        try:
            for chunk in slices:
                produce_and_wait(list(chunk), timeout=60)
                if stop.wait(pause):
                    return
        except BaseException as exc:
            errors.append(exc)

    def killer(name: str, seed: int) -> None:
        own = random.Random(seed)
        try:
            for _ in range(kills):
                proc = current[name]
                deadline = time.monotonic() + 90
                while not started(name, processes.log(proc)):
                    assert proc.poll() is None, f"{name} exited by itself:\n{processes.log(proc)[-3000:]}"
                    assert time.monotonic() < deadline, f"{name} did not start within 90 s"
                    time.sleep(0.05)
                time.sleep(own.uniform(*uptime))
                assert proc.poll() is None, f"{name} exited by itself:\n{processes.log(proc)[-3000:]}"
                kill_tree(proc)
                done[name].append(time.monotonic())
                current[name] = start(name)  # at once
        except BaseException as exc:
            errors.append(exc)

    began = time.monotonic()
    threads = [threading.Thread(target=produce_load, name="load")]
    threads += [threading.Thread(target=killer, args=(name, n), name=f"kill-{name}") for n, name in enumerate(names)]
    for t in threads:
        t.start()
    for t in threads[1:]:
        t.join(timeout=400)
    kills_done = time.monotonic()
    threads[0].join(timeout=120)
    stop.set()
    assert not errors, errors
    assert all(not t.is_alive() for t in threads), "a load or kill thread is stuck"
    assert {name: len(k) for name, k in done.items()} == {name: kills for name in names}
    return KillRun(current=current, kills=done, began=began, kills_done=kills_done)
