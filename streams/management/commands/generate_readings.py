from __future__ import annotations

import random

from django.core.management.base import BaseCommand, CommandError

from streams.kafka.producer import DeliveryError, Outbound
from streams.kafka.registry import Source, register_source
from streams.kafka.topics import topic_name
from streams.activity.demo import activity_events, sensor_events

from ._loadgen import paced_produce

register_source(Source("generate_readings", "generator", "generate_readings", produces=("sensor_data", "user_activity"),
                       pipeline="sensors"))


class Command(BaseCommand):
    help = "Produce sensor readings and user activity (seed 003 shapes) to sensor_data and user_activity."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--rate", type=float, default=20.0, help="Events per second, both kinds (default 20).")
        parser.add_argument("--duration", type=float, default=60.0,
                            help="Seconds to run (default 60; 0 = until --count or Ctrl-C).")
        parser.add_argument("--count", type=int, default=None, help="Stop after this many events.")
        parser.add_argument("--activity-share", type=float, default=0.5,
                            help="Share of user activity events, 0..1 (default 0.5).")
        parser.add_argument("--dry-run", action="store_true", help="Print samples, produce nothing.")

    def handle(self, *args, rate: float, duration: float, count: int | None, activity_share: float,
               dry_run: bool, **options) -> None:
        if rate <= 0 or not 0 <= activity_share <= 1 or duration < 0:
            raise CommandError("--rate must be positive, --activity-share within 0..1, --duration >= 0.")
        if dry_run:
            for event in sensor_events(2) + activity_events(2):
                self.stdout.write(str(event))
            return
        sensors, activity = topic_name("sensor_data"), topic_name("user_activity")
        rng = random.Random()

        def make(n: int) -> list[Outbound]:
            n_activity = sum(rng.random() < activity_share for _ in range(n))
            return (
                [Outbound(sensors, e, key=e["sensor_id"]) for e in sensor_events(n - n_activity, rng=rng)]
                + [Outbound(activity, e, key=e["user_id"]) for e in activity_events(n_activity, rng=rng)]
            )

        try:
            sent = paced_produce(make=make, rate=rate, duration=duration, total=count,
                                 report=lambda n: self.stdout.write(f"generated {n} events"))
        except DeliveryError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"{sent} events produced to {sensors} and {activity}"))
