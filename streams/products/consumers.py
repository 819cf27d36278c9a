"""The `products` consumer (seed 004): cadastro-produtos -> catalog upsert -> produtos-persistidos.

Registered in streams/consumers.py. The rules and the upsert are services.py's;
this module holds the Kafka side only.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from streams.kafka.decoding import decode_json_object
from streams.kafka.producer import Outbound
from streams.kafka.registry import BatchOutcome, Envelope
from streams.kafka.topics import topic_name

from .models import Product
from .services import catalog_upsert, product_document, registration_transform, validate_registration


def decode(envelope: Envelope) -> dict[str, Any]:
    data = decode_json_object(envelope.raw)
    registration = validate_registration(data)
    timestamp = envelope.timestamp or datetime.fromtimestamp(0, tz=UTC)
    if timestamp.tzinfo is None:
        timestamp = timestamp.replace(tzinfo=UTC)
    return {
        "document": registration_transform(registration, timestamp=timestamp),
        "payload": data,
        "timestamp": timestamp,
    }


def handle_batch(envelopes: Sequence[Envelope]) -> BatchOutcome:
    ids = catalog_upsert(items=[e.value for e in envelopes])
    persisted = Product.objects.filter(product_id__in=ids)
    target = topic_name("products_persisted")
    outbound = [Outbound(target, product_document(p), key=p.product_id) for p in persisted]
    return BatchOutcome(outbound=outbound, applied=len(ids))
