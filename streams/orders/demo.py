"""Demo traffic for seed 002: the demo catalog and realistic orders (some invalid on purpose).

Callers: `seed_catalog`, `generate_orders`, `demo_traffic`, the benchmarks and
tests. Writes the products catalog (a declared lookup of orders into products).
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone

from streams.products.models import Product

DEMO_PRODUCTS = [
    ("prod-1", "Laptop", "Computers", Decimal("1299.00")),
    ("prod-2", "Phone", "Mobile", Decimal("799.00")),
    ("prod-3", "Tablet", "Mobile", Decimal("499.00")),
    ("prod-4", "Monitor", "Displays", Decimal("249.00")),
    ("prod-5", "Keyboard", "Accessories", Decimal("59.00")),
]


def catalog_seed_demo(*, count: int = 5) -> int:
    """Upsert the seed's demo products (prod-1 Laptop .. prod-5 Keyboard, then
    "Product N" up to `count`), undeleting them. Idempotent. Returns how many."""
    rows = list(DEMO_PRODUCTS[:count]) + [
        (f"prod-{i}", f"Product {i}", "Other", Decimal("19.99")) for i in range(len(DEMO_PRODUCTS) + 1, count + 1)
    ]
    Product.objects.bulk_create(
        [
            Product(product_id=pid, name=name, category=category, price=price, currency="EUR",
                    stock_quantity=100, deleted_at=None)
            for pid, name, category, price in rows
        ],
        update_conflicts=True,
        unique_fields=["product_id"],
        update_fields=["name", "category", "deleted_at", "updated_at"],
    )
    return len(rows)


def order_events(
    n: int,
    *,
    products: int = 5,
    invalid_share: float = 0.0,
    now: datetime | None = None,
    spread_seconds: float = 0.0,
    rng: random.Random | None = None,
) -> list[dict[str, Any]]:
    """`n` realistic orders (seed 002 shape) for prod-1..prod-`products`.

    About `invalid_share` of them are invalid in one of the ways the pipeline
    must catch (unknown product, amount <= 0, a missing or empty id, a bad
    timestamp). Timestamps are `now` minus up to `spread_seconds`.
    """
    rng = rng or random.Random()
    now = now or timezone.now()
    events = []
    for _ in range(n):
        moment = now - timedelta(seconds=rng.uniform(0, spread_seconds)) if spread_seconds else now
        event: dict[str, Any] = {
            "order_id": f"order-{uuid.uuid4().hex[:20]}",
            "user_id": f"user-{rng.randint(1, 100)}",
            "product_id": f"prod-{rng.randint(1, products)}",
            "amount": round(rng.uniform(10, 500), 2),
            "timestamp": moment.astimezone(UTC).isoformat(),
        }
        if invalid_share and rng.random() < invalid_share:
            kind = rng.choice(["unknown_product", "zero_amount", "negative_amount", "missing_id",
                               "empty_user", "bad_timestamp"])
            if kind == "unknown_product":
                event["product_id"] = "prod-unknown"
            elif kind == "zero_amount":
                event["amount"] = 0
            elif kind == "negative_amount":
                event["amount"] = -event["amount"]
            elif kind == "missing_id":
                del event["order_id"]
            elif kind == "empty_user":
                event["user_id"] = ""
            else:
                event["timestamp"] = "yesterday"
        events.append(event)
    return events
