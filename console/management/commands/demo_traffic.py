"""`manage.py demo_traffic`: publish the demo traffic (console/demo/traffic.py) in rounds,
until SIGTERM/SIGINT with --forever."""

from __future__ import annotations

import random
import signal
import time

from django.core.management.base import BaseCommand

from console.demo.traffic import traffic_prepare, traffic_round


class Command(BaseCommand):
    help = "Publish realistic demo events to every pipeline's input topics (for `make run`)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--forever", action="store_true", help="Keep publishing until SIGTERM/SIGINT.")
        parser.add_argument("--interval", type=float, default=5.0, help="Seconds between rounds (default 5).")
        parser.add_argument("--rounds", type=int, default=1, help="Rounds to publish without --forever (default 1).")
        parser.add_argument("--seed", type=int, default=None, help="Random seed, for repeatable demos.")
        parser.add_argument("--file-every", type=int, default=12,
                            help="Drop a demo sensor CSV into the inbox every N rounds (0: never; default 12).")

    def handle(self, *args, forever: bool, interval: float, rounds: int, seed: int | None, file_every: int, **options) -> None:
        rng = random.Random(seed)
        stopping = {"flag": False}

        def stop(*_):
            stopping["flag"] = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        traffic_prepare()
        done = 0
        total = 0
        while not stopping["flag"] and (forever or done < rounds):
            try:
                total += traffic_round(now=int(time.time()), rng=rng,
                                       drop_file=bool(file_every) and done % file_every == 0)
            except Exception as exc:  # keep the demo alive while Kafka restarts
                self.stderr.write(f"demo round failed: {exc}")
            done += 1
            if forever or done < rounds:
                deadline = time.monotonic() + interval
                while not stopping["flag"] and time.monotonic() < deadline:
                    time.sleep(0.2)
        self.stdout.write(self.style.SUCCESS(f"published {total} demo events in {done} round(s)"))
