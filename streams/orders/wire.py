"""The hot path of both order hops: a well-formed message decoded in C.

`orders` and `processed-orders` carry flat JSON objects of known fields. msgspec
decodes such a message straight into a typed struct (strings checked as UTF-8,
the amount read exactly as a Decimal from its literal, no dict on the way),
and then the same rules as `services.validate_order` decide in a few lines.
That costs about a third less than `parse_json` followed by the dict rules
(docs/streams.md gives the figures).

Anything else is not judged here: a missing, extra or mistyped field, text
that needs stripping or is not ASCII, an amount or time the rules would
question. The functions return None and the caller runs the full path
(`decoding.decode_json_object`, `services.validate_order`), which is the one
that accepts, rejects and says why. So this module can only make a message
faster, never change its outcome: tests/streams/orders/test_wire.py compares
the two paths on well-formed, odd and hostile messages.

Why no extra field is allowed: msgspec skips an unknown field without the
checks `parse_json` makes on every value (its strings' UTF-8, numbers beyond a
double), so a message with one goes the full way.

Imports this package's services and the platform's decoding.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import msgspec

from streams.kafka.decoding import parse_timestamp

from .services import CENT, MAX_AMOUNT, Order, plain_text


class _OrderWire(msgspec.Struct, forbid_unknown_fields=True):
    order_id: str
    user_id: str
    product_id: str
    amount: Decimal
    timestamp: str


class _ProcessedWire(_OrderWire, forbid_unknown_fields=True):
    product_name: str
    category: str
    processed_at: str


_ORDER = msgspec.json.Decoder(_OrderWire)
_PROCESSED = msgspec.json.Decoder(_ProcessedWire)


def _order(wire: _OrderWire | _ProcessedWire) -> Order | None:
    """`services._plain_order`'s rules on a decoded struct. The amount is exact here, so
    its test is the checker's own: finite, within (0, MAX_AMOUNT], and equal to itself
    rounded to the cent (a float literal with at most 15 significant digits reads the
    same through `repr`, as the full path reads it)."""
    order_id = plain_text(wire.order_id, 128)
    user_id = plain_text(wire.user_id, 128)
    product_id = plain_text(wire.product_id, 64)
    amount = wire.amount
    if order_id is None or user_id is None or product_id is None or not amount.is_finite() \
            or not 0 < amount <= MAX_AMOUNT:
        return None
    cents = amount.quantize(CENT)
    if cents != amount:
        return None
    try:
        timestamp = parse_timestamp(wire.timestamp)
    except ValueError:
        return None
    return Order(order_id=order_id, user_id=user_id, product_id=product_id, amount=cents, timestamp=timestamp)


def plain_order(raw: bytes) -> Order | None:
    """The order in `raw` when it is a plain one (the `orders` topic's shape); None otherwise."""
    try:
        return _order(_ORDER.decode(raw))
    except Exception:  # not this shape (msgspec.DecodeError, UnicodeDecodeError, ...): the full path says why
        return None


def plain_processed_order(raw: bytes) -> tuple[Order, str, str, datetime] | None:
    """(order, product_name, category, processed_at) when `raw` is a plain processed order
    (`services.enrich_order`'s shape, names that need no stripping); None otherwise."""
    try:
        wire = _PROCESSED.decode(raw)
    except Exception:  # see plain_order
        return None
    name = plain_text(wire.product_name, 255)
    category = wire.category
    if name is None or name != wire.product_name or (category and plain_text(category, 120) != category):
        return None
    order = _order(wire)
    if order is None:
        return None
    try:
        processed_at = parse_timestamp(wire.processed_at)
    except ValueError:
        return None
    return order, name, category, processed_at
