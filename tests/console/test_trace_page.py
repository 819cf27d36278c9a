"""The trace page (/admin/ops/trace/, console/ops/trace.py): an order sent with a
`traceparent` through the real `orders` and `order_windows` consumers is found by its id
and by its trace id, hop by hop (its `orders` message, its `processed-orders` message, the
stored row, its window and the window's `product-metrics` messages), each linked to its
page; a dead-lettered order shows its quarantine record and dead letter; bad queries say
why; a scan that meets its cap says it stopped early; only `console.view_operations` may
open it, and message links only show to those who may read messages."""

from __future__ import annotations

import re
import secrets
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.utils import timezone

from quarantine.models import QuarantineRecord
from streams.kafka.producer import Outbound, produce_and_wait
from streams.models import ProcessedOrder, ProductWindow
from streams.orders.demo import order_events
from tests.conftest import wait_until

from .conftest import logged_in

pytestmark = pytest.mark.services

# Windows close by the wall clock soon after their end once the stream is quiet.
QUICK_CLOSE = {"ORDERS_WINDOW_GRACE_SECONDS": "5", "ORDERS_IDLE_CLOSE_SECONDS": "2"}
SECRET_USER = "user-s3cr3t-42"  # a payload value: never on the page


def traced_order(kafka, processes, *, product: str = "prod-2", windows: bool = True) -> tuple[dict, str, str]:
    """One order sent with its own traceparent through both consumers; returns the order, the
    trace id and the traceparent once the order is stored (and, for a known product, once its
    window is final and published)."""
    trace_id = secrets.token_hex(16)
    traceparent = f"00-{trace_id}-{secrets.token_hex(8)}-01"
    order = {**order_events(1, now=timezone.now() - timedelta(minutes=2))[0], "product_id": product,
             "user_id": SECRET_USER}
    produce_and_wait([Outbound(kafka.name("orders"), order, key=product,
                               headers=[("traceparent", traceparent.encode())])])
    processes.consumer("orders", "--batch-time", "50", **QUICK_CLOSE)
    if windows:
        processes.consumer("order_windows", "--batch-time", "50", **QUICK_CLOSE)
        wait_until(lambda: ProductWindow.objects.filter(
            product_id=product, final=True, final_published_at__isnull=False,
            window_start=ProcessedOrder.objects.filter(pk=order["order_id"]).values("window_start")[:1]).exists(),
            timeout=90, message="the order's window final and published")
    return order, trace_id, traceparent


def hops(html: str) -> list[tuple[str, str]]:
    """(kind, the hop's HTML) of each hop on the page, in order."""
    return re.findall(r'<li class="trace-hop[^"]*" data-kind="([a-z-]+)">(.*?)</li>', html, re.S)


def test_an_order_is_traced_by_its_id_and_by_its_trace_id_through_every_hop(kafka, processes, catalog,
                                                                            operator, viewer):
    order, trace_id, traceparent = traced_order(kafka, processes)
    row = ProcessedOrder.objects.get(pk=order["order_id"])
    assert row.trace_id.hex == trace_id
    window = ProductWindow.objects.get(product_id="prod-2", window_start=row.window_start)

    client = logged_in(operator)
    for query in (f"?q={order['order_id']}", f"?q={trace_id}", f"?q={traceparent}&kind=trace"):
        response = client.get("/admin/ops/trace/" + query)
        assert response.status_code == 200, query
        html = response.content.decode()
        found = hops(html)
        kinds = [kind for kind, _ in found]
        assert "message" in kinds and "row" in kinds and "window" in kinds, (query, kinds)
        # The orders message, then the processed-orders message, each at its place and linked to the browser.
        orders_at = f'href="/admin/ops/topics/{kafka.name("orders")}/0/0/"'
        processed_at = f'href="/admin/ops/topics/{kafka.name("processed_orders")}/0/0/"'
        assert orders_at in html and processed_at in html, query
        assert html.index(orders_at) < html.index(processed_at), "the hops are in time order"
        # Each message says who reads it, linked to the consumer's page, and which member owns it now.
        orders_hop = next(h for k, h in found if orders_at in h)
        assert 'href="/admin/ops/consumers/orders/"' in orders_hop and "· member " in orders_hop
        assert f"{kafka.name('orders')}[0]@0" in orders_hop
        # The stored row and the window it counted in, final and published, linked to their admin pages.
        assert f'href="/admin/streams/processedorder/{order["order_id"]}/change/"' in html
        window_hop = next(h for k, h in found if k == "window")
        assert f'href="/admin/streams/productwindow/{window.pk}/change/"' in window_hop
        assert "final" in window_hop and "final state published" in window_hop
        # The window's messages on product-metrics, its final state among them.
        metrics = [h for k, h in found if f"/admin/ops/topics/{kafka.name('product_metrics')}/" in h]
        assert metrics and any("Window on product-metrics — final" in h for h in metrics), query
        assert trace_id in html and "stopped early" not in html, query
        assert SECRET_USER not in html and str(order["amount"]) not in html, "no message contents"

    # A viewer of the operations pages without the message permission sees the hops, not the message links.
    html = logged_in(viewer).get(f"/admin/ops/trace/?q={order['order_id']}").content.decode()
    assert "Order on orders" in html and f"/admin/ops/topics/{kafka.name('orders')}/" not in html
    assert "its page needs a permission you do not have" in html
    # The dashboard and the operations pages link to it.
    assert 'href="/admin/ops/trace/"' in client.get("/admin/ops/dashboard/").content.decode()
    assert 'id="ops-trace-link"' in client.get("/admin/").content.decode()


def test_a_dead_lettered_order_shows_its_quarantine_record_and_dead_letter(kafka, processes, catalog, operator):
    order, trace_id, _ = traced_order(kafka, processes, product="prod-404", windows=False)
    record = wait_until(lambda: QuarantineRecord.objects.filter(topic=kafka.name("orders")).first(),
                        message="the dead-lettered order's record")
    assert record.trace_id.hex == trace_id
    wait_until(lambda: kafka.end_offsets("orders_dlq") == 1, message="the dead letter on orders-dlq")

    for query in (f"?q={order['order_id']}", f"?q={trace_id}&kind=trace"):
        html = logged_in(operator).get("/admin/ops/trace/" + query).content.decode()
        found = hops(html)
        record_hop = next(h for k, h in found if k == "quarantine")
        assert f'href="/admin/quarantine/quarantinerecord/{record.pk}/change/"' in record_hop
        assert "unknown product" in record_hop and "Open" in record_hop
        dead_letter = next(h for k, h in found if k == "dead-letter")
        assert f'href="/admin/ops/topics/{kafka.name("orders_dlq")}/0/0/"' in dead_letter
        assert f"{kafka.name('orders')}[0]@0" in dead_letter  # the original it copies
        assert f'href="/admin/ops/topics/{kafka.name("orders")}/0/0/"' in html  # the order as it arrived
        assert "trace-red" in html and SECRET_USER not in html
        assert f"No stored order {order['order_id']}: it was dead-lettered" in html


def test_without_view_operations_the_trace_page_is_forbidden(transactional_db):
    staff = get_user_model().objects.create_user("no-ops-trace", is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(content_type__app_label="streams",
                                                          codename__startswith="view_"))
    assert logged_in(staff).get("/admin/ops/trace/?q=order-1").status_code == 403


@pytest.mark.parametrize(("query", "says"), [
    ({"q": "order\x00-1"}, "control characters"),
    ({"q": "x" * 2000}, "characters long"),
    ({"q": "not-a-trace", "kind": "trace"}, "is not a trace id"),
    ({"q": "00-" + "0" * 32 + "-" + "1" * 16 + "-01", "kind": "trace"}, "is not a trace id"),
    ({"q": "seven yesterday", "kind": "telemetry"}, "is not a telemetry id and time"),
    ({"q": "7 not-a-time", "kind": "telemetry"}, "is not a telemetry id and time"),
    ({"q": "7 2026-13-45T00:00:00", "kind": "telemetry"}, "is not a telemetry id and time"),
    ({"q": "7 99999999999999", "kind": "telemetry"}, "is not a telemetry id and time"),
    ({"q": "order-1", "kind": "<script>"}, "unknown kind"),
    ({"q": "p" * 65, "kind": "product"}, "at most 64 characters"),
])
def test_a_query_the_page_cannot_search_says_why(operator, query, says):
    response = logged_in(operator).get("/admin/ops/trace/", query)
    assert response.status_code == 200
    html = response.content.decode()
    error = re.search(r'<p class="trace-error" id="trace-error" role="alert">(.*?)</p>', html, re.S)
    assert error and says in error.group(1), html[-2000:]
    assert "<script>" not in html.split('id="trace-error"')[1][:300]


def test_a_scan_that_meets_its_cap_says_it_stopped_early(kafka, operator, settings):
    settings.CONSOLE_TRACE_SCAN_LIMIT = 5
    produce_and_wait([Outbound(kafka.name("orders"), event, key=event["product_id"])
                      for event in order_events(30, now=timezone.now())])
    html = logged_in(operator).get("/admin/ops/trace/", {"q": "order-not-sent", "kind": "order"}).content.decode()
    assert "Nothing was found for order order-not-sent" in html
    assert re.search(rf"scanned 5 messages of topic {kafka.name('orders')} between \S+ \S+ and \S+ \S+ UTC", html)
    assert "stopped early: the cap of 5 messages per topic" in html
    assert 'id="trace-stopped"' in html
