"""The C-decoded hot path of the order hops (streams/orders/wire.py) against the full rules.

Differential: for every message, the fast path either leaves it to the full
path (None) or returns exactly what the full path returns, down to the
amount's text as COPY writes it. Plain messages must take the fast path, or
it would not be one. Pure logic: no services.
"""

from __future__ import annotations

import json
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.kafka.registry import Envelope, MessageRejected
from streams.kafka.decoding import decode_json_object
from streams.orders.consumers import decode_processed_order_fully
from streams.orders.services import validate_order
from streams.orders.wire import plain_order, plain_processed_order
from tests.fuzz.strategies import json_values, nasty_text

ORDER = {"order_id": "ord-1", "user_id": "u-1", "product_id": "P-1", "amount": 12.5,
         "timestamp": "2026-12-06T07:00:00.123Z"}
PROCESSED = {**ORDER, "product_name": "Widget", "category": "tools", "processed_at": "2026-12-06T07:00:01Z"}

# Amounts as their JSON literal: what a client may write, not what json.dumps would.
amount_literals = st.one_of(
    st.sampled_from(["12.5", "12.50", "12.500", "1E2", "1e-2", "0.001", "129.999", "-0", "0", "0.00",
                     "999999999999.99", "999999999999.991", "1000000000000", "1e400", "1e-400",
                     "0.1000000000000000055511151231257827", "100.00000000000001", "1.50000000000000000000",
                     '"12.5"', '" 12.5 "', '"1_0"', '"NaN"', '"Infinity"', '"-1"', '"1e2"', "true", "null",
                     "[1]", "12345678901234567890123"]),
    st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=Decimal("-5"),
                max_value=Decimal("1e13")).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.integers(min_value=-10, max_value=10**14).map(str),
)
texts = st.one_of(st.sampled_from(["ord-1", " padded ", "", "x" * 129, "x" * 300, "caf\u00e9", "a\x00b", "\t"]),
                  nasty_text, st.integers(min_value=-5, max_value=5))
times = st.one_of(st.sampled_from(["2026-12-06T07:00:00Z", "2026-12-06T07:00:00", "2026-12-06 07:00:00+01:00",
                                   "1999-12-31T23:59:59Z", "2100-01-01T00:00:01Z", "20261206T070000",
                                   " 2026-12-06T07:00:00Z", "soon", ""]),
                  st.integers(min_value=0, max_value=5_000_000_000), nasty_text)


def literal(data: dict, amount: str | None, extra: str = "") -> bytes:
    parts = [f"{json.dumps(k)}: {json.dumps(v)}" for k, v in data.items() if k != "amount"]
    if amount is not None:
        parts.append(f'"amount": {amount}')
    return ("{" + ", ".join(parts) + extra + "}").encode("utf-8", "surrogatepass")


def full_order(raw: bytes):
    try:
        return validate_order(decode_json_object(raw))
    except MessageRejected:
        return "rejected"


def full_processed(raw: bytes):
    try:
        item = decode_processed_order_fully(Envelope("t", 0, 0, None, [], raw))
    except MessageRejected:
        return "rejected"
    return item.order, item.product_name, item.category, item.processed_at


def same(fast, full) -> None:
    assert fast == full
    order = fast if not isinstance(fast, tuple) else fast[0]
    expected = full if not isinstance(full, tuple) else full[0]
    assert str(order.amount) == str(expected.amount)  # as COPY writes it


def test_plain_messages_take_the_fast_path_and_match():
    for raw in (json.dumps(ORDER).encode(), literal(ORDER, "129.9"), literal(ORDER, "7")):
        same(plain_order(raw), full_order(raw))
    raw = json.dumps(PROCESSED).encode()
    same(plain_processed_order(raw), full_processed(raw))
    same(plain_processed_order(json.dumps({**PROCESSED, "category": ""}).encode()),
         full_processed(json.dumps({**PROCESSED, "category": ""}).encode()))


def test_what_the_fast_path_leaves_to_the_full_one():
    for raw in (
        literal(ORDER, "12.5", ', "extra": "\\ud800"'),  # an unknown field: not checked by msgspec
        literal(ORDER, "12.5", ', "extra": 1e400'),
        literal({**ORDER, "order_id": 42}, "12.5"),  # the full rules accept a number as an id
        literal({**ORDER, "timestamp": 1767614400}, "12.5"),
        literal(ORDER, "12.5").replace(b"ord-1", b"ord-\xff"),
        literal(ORDER, "129.999"),
        literal(ORDER, '"NaN"'),
    ):
        assert plain_order(raw) is None, raw


@settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck))
@given(field=st.sampled_from(sorted(ORDER)), value=texts, amount=amount_literals, timestamp=times,
       extra=st.one_of(st.just(""), json_values.map(lambda v: ', "extra": ' + json.dumps(v, allow_nan=True)),
                       st.just(', "amount": 3'), st.just(', "order_id": "dup"')),
       drop=st.booleans())
def test_orders_fast_path_equals_the_full_rules(field, value, amount, timestamp, extra, drop):
    data = {**ORDER, "timestamp": timestamp}
    if field != "amount":
        if drop:
            data.pop(field)
        else:
            data[field] = value
    raw = literal(data, None if drop and field == "amount" else amount, extra)
    fast = plain_order(raw)
    if fast is not None:
        same(fast, full_order(raw))


@settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck))
@given(field=st.sampled_from(sorted(PROCESSED)), value=texts, amount=amount_literals, processed_at=times,
       extra=st.one_of(st.just(""), st.just(', "extra": 1'), st.just(', "category": " x"')))
def test_processed_orders_fast_path_equals_the_full_rules(field, value, amount, processed_at, extra):
    data = {**PROCESSED, "processed_at": processed_at}
    if field != "amount":
        data[field] = value
    raw = literal(data, amount, extra)
    fast = plain_processed_order(raw)
    if fast is not None:
        same(fast, full_processed(raw))
