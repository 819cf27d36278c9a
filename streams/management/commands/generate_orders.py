from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from streams.kafka.producer import DeliveryError, Outbound
from streams.kafka.registry import Source, register_source
from streams.kafka.topics import topic_name
from streams.orders.demo import order_events

from ._loadgen import paced_produce

register_source(Source("generate_orders", "generator", "generate_orders", produces=("orders",), pipeline="orders"))


class Command(BaseCommand):
    help = "Produce realistic orders (seed 002 shape) to the orders topic at a steady rate."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--rate", type=float, default=30.0, help="Orders per second (default 30).")
        parser.add_argument("--duration", type=float, default=60.0,
                            help="Seconds to run (default 60; 0 = until --count or Ctrl-C).")
        parser.add_argument("--count", type=int, default=None, help="Stop after this many orders.")
        parser.add_argument("--invalid-share", type=float, default=0.02,
                            help="Share of deliberately invalid orders, 0..1 (default 0.02).")
        parser.add_argument("--products", type=int, default=5,
                            help="Order products prod-1..prod-N (default 5; run seed_catalog --count N).")
        parser.add_argument("--dry-run", action="store_true", help="Print three sample orders, produce nothing.")

    def handle(self, *args, rate: float, duration: float, count: int | None, invalid_share: float,
               products: int, dry_run: bool, **options) -> None:
        if rate <= 0 or products < 1 or not 0 <= invalid_share <= 1 or duration < 0:
            raise CommandError("--rate and --products must be positive, --invalid-share within 0..1, "
                               "--duration >= 0.")
        if dry_run:
            for event in order_events(3, products=products, invalid_share=invalid_share):
                self.stdout.write(str(event))
            return
        topic = topic_name("orders")

        def make(n: int) -> list[Outbound]:
            return [Outbound(topic, e, key=str(e.get("product_id") or ""))
                    for e in order_events(n, products=products, invalid_share=invalid_share)]

        try:
            sent = paced_produce(make=make, rate=rate, duration=duration, total=count,
                                 report=lambda n: self.stdout.write(f"generated {n} orders"))
        except DeliveryError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"{sent} orders produced to {topic}"))
