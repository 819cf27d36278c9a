"""Product registration (seed 004): cadastro-produtos -> catalog -> produtos-persistidos.

A registration `{productId, productName, productDescription, price, currency,
stockQuantity, category}` is validated (`validate_registration`, shared by the
REST endpoint and the consumer), transformed to the catalog shape
`{id, name, description, pricing: {amount, currency}, availability: {quantity,
timestamp}, category}`, upserted by productId in one statement per batch, and
the persisted product is published to `products_persisted`.

The availability timestamp is the Kafka timestamp of the registration, so a
replayed message carries the same timestamp as the first delivery. The upsert
only overwrites a row with a *newer* registration (or a different one at the
same instant), which makes a replay change nothing, keeps an API edit or a
soft delete from being undone by an old registration, and lets a new
registration of a deleted product bring it back.

Callers: the consumer (consumer.py), the API and admin.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import connection
from django.utils import timezone

from streams.kafka.decoding import FieldChecker
from streams.kafka.producer import Outbound, publish_and_wait
from streams.kafka.registry import Source, register_source
from streams.kafka.topics import topic_name

from .models import Product

CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
MAX_PRICE = Decimal("999999999999.99")
MAX_STOCK = 2**31 - 1

# What the registration endpoint puts into the pipelines (the pipeline map, console/ops/topology.py).
register_source(Source("api:products", "endpoint", "POST /api/products/", produces=("product_registrations",),
                       pipeline="products", link="/api/products/"))


def validate_registration(data: dict[str, Any]) -> dict[str, Any]:
    """Check a seed 004 registration; raise MessageRejected with every field error.

    Returns the registration with normalized values (productId as a string,
    price rounded to cents, currency upper case)."""
    check = FieldChecker(data)
    raw_id = data.get("productId")
    product_id: str | None
    if isinstance(raw_id, int) and not isinstance(raw_id, bool):
        product_id = str(raw_id)
        if raw_id < 0:
            check._fail("productId", "min", "must not be negative")
        elif len(product_id) > 64:
            check._fail("productId", "max_length", "must be at most 64 characters")
    else:
        product_id = check.string("productId", max_length=64)
    if product_id is not None and not product_id.strip():
        check._fail("productId", "required", "this field is required")
    name = check.string("productName", max_length=255)
    description = check.string("productDescription", max_length=10000, required=False) or ""
    price = check.number("price", minimum=0, maximum=float(MAX_PRICE))
    currency = check.string("currency", max_length=3)
    if isinstance(currency, str):
        currency = currency.upper()
        if not CURRENCY_RE.match(currency):
            check._fail("currency", "currency", "must be a 3-letter ISO 4217 code such as BRL")
    stock = check.integer("stockQuantity", minimum=0, maximum=MAX_STOCK)
    category = check.string("category", max_length=120, required=False) or ""
    check.done()
    return {
        "productId": product_id,
        "productName": name,
        "productDescription": description,
        "price": float(Decimal(str(price)).quantize(Decimal("0.01"))),
        "currency": currency,
        "stockQuantity": stock,
        "category": category,
    }


def registration_transform(registration: dict[str, Any], *, timestamp: datetime) -> dict[str, Any]:
    """The catalog shape of a validated registration."""
    return {
        "id": registration["productId"],
        "name": registration["productName"],
        "description": registration["productDescription"],
        "pricing": {"amount": registration["price"], "currency": registration["currency"]},
        "availability": {"quantity": registration["stockQuantity"], "timestamp": timestamp.isoformat()},
        "category": registration["category"],
    }


def registration_publish(*, registration: dict[str, Any], timeout: float | None = None) -> None:
    """Publish a validated registration to cadastro-produtos and wait for the ack."""
    publish_and_wait(
        [Outbound(topic_name("product_registrations"), registration, key=registration["productId"])],
        timeout=timeout,
    )


_UPSERT_SQL = """
INSERT INTO {table} AS p
    (product_id, name, description, price, currency, stock_quantity, category,
     payload, availability_timestamp, created_at, updated_at, deleted_at)
VALUES {values}
ON CONFLICT (product_id) DO UPDATE SET
    name = EXCLUDED.name,
    description = EXCLUDED.description,
    price = EXCLUDED.price,
    currency = EXCLUDED.currency,
    stock_quantity = EXCLUDED.stock_quantity,
    category = EXCLUDED.category,
    payload = EXCLUDED.payload,
    availability_timestamp = EXCLUDED.availability_timestamp,
    updated_at = EXCLUDED.updated_at,
    deleted_at = NULL
WHERE p.availability_timestamp IS NULL
   OR EXCLUDED.availability_timestamp > p.availability_timestamp
   OR (EXCLUDED.availability_timestamp = p.availability_timestamp
       AND EXCLUDED.payload::jsonb IS DISTINCT FROM p.payload::jsonb)
"""


def catalog_upsert(*, items: Sequence[dict[str, Any]]) -> list[str]:
    """Upsert decoded registrations (transformed documents) by productId in one statement.

    Within a batch the newest registration of a product wins (Kafka timestamp,
    then position). Returns the product ids of the batch."""
    latest: dict[str, dict[str, Any]] = {}
    for item in items:
        pid = item["document"]["id"]
        if pid not in latest or item["timestamp"] >= latest[pid]["timestamp"]:
            latest[pid] = item
    if not latest:
        return []
    now = timezone.now()
    params: list[Any] = []
    rows = []
    for pid, item in latest.items():
        doc = item["document"]
        rows.append("(%s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s, NULL)")
        params += [
            pid, doc["name"], doc["description"], Decimal(str(doc["pricing"]["amount"])),
            doc["pricing"]["currency"], doc["availability"]["quantity"], doc["category"],
            json.dumps(item["payload"]), item["timestamp"], now, now,
        ]
    sql = _UPSERT_SQL.format(table=connection.ops.quote_name(Product._meta.db_table), values=", ".join(rows))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
    return list(latest)


def product_document(product: Product) -> dict[str, Any]:
    """The persisted product as published to produtos-persistidos."""
    return {
        "id": product.product_id,
        "name": product.name,
        "description": product.description,
        "pricing": {"amount": float(product.price), "currency": product.currency},
        "availability": {
            "quantity": product.stock_quantity,
            "timestamp": product.availability_timestamp.isoformat() if product.availability_timestamp else None,
        },
        "category": product.category,
        "deleted": product.deleted_at is not None,
        "createdAt": product.created_at.isoformat(),
        "updatedAt": product.updated_at.isoformat(),
    }


# ------------------------------------------------------------ API services

EDITABLE_FIELDS = ("name", "description", "price", "currency", "stock_quantity", "category")


def product_update(*, product: Product, changes: dict[str, Any]) -> Product:
    """Edit catalog fields of a product (the registration payload is kept as it arrived)."""
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"not editable: {', '.join(sorted(unknown))}")
    for name, value in changes.items():
        setattr(product, name, value)
    product.save(update_fields=[*changes, "updated_at"])
    return product


def product_soft_delete(*, product: Product) -> Product:
    """Hide a product from the catalog; orders keep resolving its name and category."""
    if product.deleted_at is None:
        product.deleted_at = timezone.now()
        product.save(update_fields=["deleted_at", "updated_at"])
    return product
