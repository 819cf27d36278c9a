from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from streams.orders.demo import DEMO_PRODUCTS, catalog_seed_demo


class Command(BaseCommand):
    help = (
        "Upsert the demo product catalog of the order pipeline (prod-1 Laptop, prod-2 Phone, "
        "prod-3 Tablet, prod-4 Monitor, prod-5 Keyboard). Idempotent; undeletes them."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--count", type=int, default=len(DEMO_PRODUCTS),
                            help="How many demo products (prod-1..prod-N; beyond 5 they are 'Product N').")
        parser.add_argument("--dry-run", action="store_true", help="Show what would be upserted, change nothing.")

    def handle(self, *args, count: int, dry_run: bool, **options) -> None:
        if count < 1:
            raise CommandError("--count must be at least 1.")
        if dry_run:
            self.stdout.write(f"would upsert prod-1..prod-{count}")
            return
        n = catalog_seed_demo(count=count)
        self.stdout.write(self.style.SUCCESS(f"{n} demo product(s) upserted"))
