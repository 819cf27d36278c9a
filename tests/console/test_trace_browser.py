"""The trace page in a real browser (Playwright driving Debian's Chromium, as
tests/console/test_map_browser.py does): an operator opens it from the admin index's
dashboard, searches an order that went through the real `orders` and `order_windows`
consumers, reads its path in time order and follows it to its final window.
`make screenshots` saves the page into docs/images/trace.png."""

from __future__ import annotations

import pytest

from streams.models import ProcessedOrder, ProductWindow
from tests.quarantine.test_browser import browser, page  # noqa: F401 (fixtures)

from .test_dashboard_browser import SCREENSHOTS
from .test_trace_page import traced_order

pytestmark = pytest.mark.browser

PASSWORD = "trace-pass-123"


def test_the_trace_page_follows_an_order_from_orders_to_its_final_window(  # noqa: F811
        page, live_server, kafka, processes, catalog, operator):
    operator.set_password(PASSWORD)
    operator.save()
    order, trace_id, _ = traced_order(kafka, processes)
    row = ProcessedOrder.objects.get(pk=order["order_id"])
    window = ProductWindow.objects.get(product_id=row.product_id, window_start=row.window_start)

    page.goto("/admin/login/")
    page.fill("#id_username", operator.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.click("#ops-trace-link")  # the admin index's dashboard links to it
    page.fill("#trace-q", order["order_id"])
    page.click(".trace-form input[type=submit]")
    page.wait_for_selector("#trace-hops")
    assert page.inner_text("#trace-subject").startswith(f"Order {order['order_id']}")
    assert trace_id in page.inner_text("#trace-ids")
    kinds = page.eval_on_selector_all("#trace-hops > li", "items => items.map(i => i.dataset.kind)")
    assert kinds.index("message") < kinds.index("row") < kinds.index("window"), kinds
    titles = page.eval_on_selector_all("#trace-hops .trace-hop-head a", "links => links.map(a => a.textContent)")
    assert titles[:2] == ["Order on orders", "Processed order on processed-orders"], titles
    assert "Window on product-metrics — final" in titles
    assert "stopped early" not in page.inner_text("#trace-scans")

    page.set_viewport_size({"width": 1280, "height": 1000})
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "trace.png"), full_page=True)

    # Follow it to the window it counted in: final, and published.
    window_hop = '#trace-hops li[data-kind="window"]'
    assert "final" in page.inner_text(window_hop) and "final state published" in page.inner_text(window_hop)
    page.click(f"{window_hop} .trace-hop-head a")
    page.wait_for_url(f"**/admin/streams/productwindow/{window.pk}/change/")
    assert row.product_id in page.inner_text("#content")
