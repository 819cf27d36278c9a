"""Pure logic and database-only behaviour of the order pipeline: the order rules, the
windows applied and rebuilt, the API and admin, the generators and the `orders` batch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import call_command

from streams.kafka.registry import MessageRejected
from streams.models import Product, ProductWindow
from streams.kafka.decoding import iso
from streams.orders.demo import order_events
from streams.orders.services import ProcessedOrderIn, order_windows_apply, order_windows_rebuild, validate_order

T0 = datetime(2026, 1, 5, 12, 0, 0, tzinfo=UTC)


def test_order_validation_collects_every_field_error():
    good = {"order_id": "o-1", "user_id": "u-1", "product_id": "prod-1", "amount": 10.5,
            "timestamp": 1767614400}
    order = validate_order(good)
    assert order.amount == Decimal("10.50") and order.timestamp == T0
    assert validate_order({**good, "order_id": 42}).order_id == "42"
    with pytest.raises(MessageRejected) as exc:
        validate_order({"order_id": " ", "amount": float("inf"), "timestamp": "soon", "product_id": ["x"]})
    rules = {e["field"]: e["rule"] for e in exc.value.errors}
    assert rules == {"order_id": "required", "user_id": "required", "product_id": "string",
                     "amount": "number", "timestamp": "timestamp"}
    for amount, rule in ((0, "positive"), (-1, "positive"), (1.005, "precision"), ("abc", "number"),
                         (True, "number")):
        with pytest.raises(MessageRejected) as exc:
            validate_order({**good, "amount": amount})
        assert exc.value.errors[0]["rule"] == rule, amount


def _processed(events, names) -> list[ProcessedOrderIn]:
    return [
        ProcessedOrderIn(order=validate_order(e), product_name=names[e["product_id"]], category="",
                         processed_at=T0)
        for e in events
    ]


@pytest.mark.django_db
def test_windows_apply_is_idempotent_and_equals_a_rebuild(catalog):
    names = dict(Product.objects.values_list("product_id", "name"))
    events = order_events(400, now=T0 + timedelta(minutes=5), spread_seconds=300)
    result = order_windows_apply(orders=_processed(events[:250], names))
    assert result.stored == 250 and result.open_windows and result.late == 0
    result = order_windows_apply(orders=_processed(events, names))  # 250 replayed + 150 new
    assert result.stored == 150
    before = {(w.product_id, w.window_start): (w.order_count, w.total_revenue) for w in ProductWindow.objects.all()}
    assert sum(c for c, _ in before.values()) == 400
    assert sum(r for _, r in before.values()) == sum(Decimal(str(e["amount"])) for e in events)
    ProductWindow.objects.update(order_count=1, total_revenue=1)  # damage them
    order_windows_rebuild()
    after = {(w.product_id, w.window_start): (w.order_count, w.total_revenue) for w in ProductWindow.objects.all()}
    assert after == before


@pytest.mark.django_db
def test_window_size_is_a_setting(catalog, settings):
    settings.ORDERS_WINDOW_SECONDS = 300
    names = dict(Product.objects.values_list("product_id", "name"))
    events = order_events(20, now=T0 + timedelta(seconds=299), spread_seconds=299)
    order_windows_apply(orders=_processed(events, names))
    assert set(ProductWindow.objects.values_list("window_start", flat=True)) == {T0}
    assert set(ProductWindow.objects.values_list("window_end", flat=True)) == {T0 + timedelta(minutes=5)}


@pytest.mark.django_db
def test_seed_catalog_is_idempotent_and_undeletes():
    call_command("seed_catalog")
    Product.objects.filter(product_id="prod-2").update(deleted_at=T0, name="Old")
    call_command("seed_catalog")
    assert Product.objects.active().count() == 5
    assert dict(Product.objects.values_list("product_id", "name")) == {
        "prod-1": "Laptop", "prod-2": "Phone", "prod-3": "Tablet", "prod-4": "Monitor", "prod-5": "Keyboard"}


@pytest.mark.django_db
def test_api_lists_windows_filtered_by_product_and_time_and_processed_orders(catalog, client):
    names = dict(Product.objects.values_list("product_id", "name"))
    events = order_events(100, now=T0 + timedelta(minutes=3), spread_seconds=179)
    order_windows_apply(orders=_processed(events, names))
    assert client.get("/api/order-windows/").status_code == 401  # reads need the view permission
    reader = User.objects.create_user("orders-reader")
    reader.user_permissions.add(*Permission.objects.filter(
        content_type__app_label="streams", codename__in=["view_productwindow", "view_processedorder"]))
    client.force_login(reader)
    response = client.get("/api/order-windows/", {"product_id": "prod-2", "since": "2026-01-05T12:01:00Z",
                                                  "until": "2026-01-05T12:03:00Z"})
    assert response.status_code == 200
    body = response.json()
    starts = sorted(r["window_start"] for r in body["results"])
    assert {r["product_id"] for r in body["results"]} == {"prod-2"}
    assert starts and all("12:01:00" in s or "12:02:00" in s for s in starts)
    expected = sum(1 for e in events if e["product_id"] == "prod-2"
                   and T0 + timedelta(minutes=1) <= datetime.fromisoformat(e["timestamp"]) < T0 + timedelta(minutes=3))
    assert sum(r["order_count"] for r in body["results"]) == expected

    response = client.get("/api/processed-orders/", {"product_id": "prod-1", "limit": 500})
    assert response.status_code == 200
    rows = response.json()["results"]
    assert len(rows) == sum(1 for e in events if e["product_id"] == "prod-1")
    assert rows[0]["product_name"] == "Laptop"
    one = client.get(f"/api/processed-orders/{rows[0]['order_id']}/").json()
    assert one["order_id"] == rows[0]["order_id"]
    assert client.post("/api/order-windows/", {}).status_code == 405  # read-only, whoever asks
    assert client.get("/api/order-windows/", {"since": "not a date"}).status_code == 400

    # Pages of processed orders: newest by their own time, orders of one instant told apart
    # by their id, so walking the cursors returns each order once.
    tied = [dict(e, timestamp=events[0]["timestamp"]) for e in order_events(30, now=T0, spread_seconds=0)]
    order_windows_apply(orders=_processed(tied, names))
    seen, url, params = [], "/api/processed-orders/", {"limit": 7}
    while url:
        page = client.get(url, params).json()
        seen += [(r["timestamp"], r["order_id"]) for r in page["results"]]
        url, params = page["next"], None
    assert len(seen) == len(set(seen)) == len(events) + len(tied)
    times = [datetime.fromisoformat(t) for t, _ in seen]
    assert times == sorted(times, reverse=True)


@pytest.mark.django_db
def test_admin_windows_chart_and_rebuild_action(catalog, client):
    names = dict(Product.objects.values_list("product_id", "name"))
    events = order_events(60, now=T0 + timedelta(minutes=4), spread_seconds=239)
    order_windows_apply(orders=_processed(events, names))
    client.force_login(User.objects.create_superuser("boss", "b@example.com", "pw-123456789"))
    page = client.get("/admin/streams/productwindow/", {"product_id__exact": "prod-1"})
    assert page.status_code == 200
    html = page.content.decode()
    assert "<svg" in html and "Revenue per window: prod-1 Laptop" in html
    assert html.count("<rect") == ProductWindow.objects.filter(product_id="prod-1").count()
    assert "Filter by one product" in client.get("/admin/streams/productwindow/").content.decode()

    ProductWindow.objects.update(order_count=0)
    ids = list(ProductWindow.objects.filter(product_id="prod-1").values_list("pk", flat=True))
    response = client.post("/admin/streams/productwindow/", {"action": "rebuild_windows", "_selected_action": ids},
                           follow=True)
    assert "Recomputed" in response.content.decode()
    assert sum(ProductWindow.objects.filter(product_id="prod-1").values_list("order_count", flat=True)) == \
        sum(1 for e in events if e["product_id"] == "prod-1")
    from django.contrib.admin.models import LogEntry
    assert LogEntry.objects.filter(change_message__contains="Recomputed").count() == 1
    assert client.get("/admin/streams/processedorder/").status_code == 200
    assert client.get("/admin/streams/sensorreading/").status_code == 200


@pytest.mark.django_db
def test_generators_produce_the_requested_load(kafka, capsys):
    call_command("generate_orders", "--count", "120", "--rate", "2000", "--duration", "0",
                 "--invalid-share", "0.5")
    call_command("generate_readings", "--count", "80", "--rate", "2000", "--duration", "0")
    assert kafka.end_offsets("orders") == 120
    assert kafka.end_offsets("sensor_data") + kafka.end_offsets("user_activity") == 80
    out = capsys.readouterr().out
    assert "120 orders produced" in out and "80 events produced" in out
    invalid = 0
    for event in order_events(2000, invalid_share=0.1):
        try:
            validate_order(event)
            invalid += event["product_id"] == "prod-unknown"
        except MessageRejected:
            invalid += 1
    assert 100 < invalid < 300


@pytest.mark.django_db
def test_orders_batch_checks_the_catalog_with_one_query(catalog, django_assert_num_queries):
    import json

    from streams.kafka.registry import Envelope
    from streams.orders.consumers import decode_order, handle_orders

    events = order_events(200, now=T0) + [dict(order_events(1, now=T0)[0], product_id="prod-404")]
    envelopes = [Envelope(topic="orders", partition=0, offset=i, key=None, headers=[], raw=json.dumps(e).encode())
                 for i, e in enumerate(events)]
    for envelope in envelopes:
        envelope.value = decode_order(envelope)
    with django_assert_num_queries(2):  # the catalog, and the stamp (the rows move after the publish)
        outcome = handle_orders(envelopes)
    assert len(outcome.after_publish) == 1
    # The group's first batch: stamped with its oldest order's time, which every order is at least.
    oldest = min(e.value.timestamp for e in envelopes)
    assert {o.headers[0] for o in outcome.outbound} == {("x-upstream-watermark", iso(oldest).encode())}
    assert len(outcome.outbound) == 200 and outcome.applied == 200
    assert [r.reason for r in outcome.rejected] == ["unknown product 'prod-404': not in the catalog"]
    first = json.loads(outcome.outbound[0].encoded_value())
    assert set(first) == {"order_id", "user_id", "product_id", "amount", "timestamp", "product_name", "category",
                          "processed_at"}
