"""The admin and API lists of the tables that grow with the traffic cost the same at
millions of rows as at none (issue 23, docs/streams.md "Pages whose cost does not grow
with the table").

One test preloads history with generate_series in SQL (2,000,000 processed orders over
60 days, their 1-minute windows, 500,000 machine metrics over 28 hours, 200,000
activity events over 20 days), analyses it, then opens every page an operator or a reader would:
each admin changelist by default, with each filter and with a search, and each API
list with its filters and a deep cursor. Every query a page runs on these tables is
explained (EXPLAIN ANALYZE of the SQL the page really sent, from CaptureQueriesContext)
and must not read the whole table: no sequential scan of it, and no node that reads more
than ROWS_BOUND rows (a sort over the table, a scan of a whole index or of all of one
product's orders, a count). A new filter or column that brings a scan back fails here,
naming the page and the plan.

Everything runs in the test's transaction and is rolled back. Run with `-s` to see each
page's time and rows read (the figures docs/streams.md quotes).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from streams.orders.demo import catalog_seed_demo

ORDERS = 2_000_000
METRICS = 500_000
EVENTS = 200_000
END = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)
ORDER_STEP = 60 * 86400 / ORDERS  # seconds between orders: 60 days of history, ~33,000 orders a day
# The most rows any node of a page's plan may read: 5% of the orders. What a page reads depends on
# the window (a day of orders is ~33,000) or the page and the filter's share (a product of one order
# in 1,000 is ~52,000 rows of the time index for 51 of its orders), never on the table's size; a scan
# of the table, or of all 400,000 orders of one product, is well above it.
ROWS_BOUND = 100_000

BIG = {"streams_processedorder", "streams_productwindow", "streams_machinemetric", "streams_activityevent"}


def preload() -> None:
    catalog_seed_demo(count=6)  # prod-1 .. prod-5 and a rare prod-6 ("Other")
    with connection.cursor() as cursor:
        cursor.execute("""
            INSERT INTO streams_processedorder (order_id, user_id, product_id, product_name, category, amount,
                ordered_at, window_start, processed_at, stored_at, late, released_at)
            SELECT 'hist-' || i, 'user-' || (i %% 100000), p.product_id, p.name, p.category, (i %% 500) + 0.99,
                   o.at, date_trunc('minute', o.at), o.at, o.at, i %% 1000 = 3,
                   CASE WHEN i %% 10000 = 3 THEN o.at END
            FROM generate_series(1, %(n)s) i
            CROSS JOIN LATERAL (SELECT %(end)s::timestamptz - make_interval(secs => (%(n)s - i) * %(step)s) AS at) o
            JOIN streams_product p ON p.product_id = CASE WHEN i %% 1000 = 7 THEN 'prod-6'
                                                          ELSE 'prod-' || (1 + i %% 5) END
        """, {"n": ORDERS, "end": END, "step": ORDER_STEP})
        cursor.execute("""
            INSERT INTO streams_productwindow (product_id, product_name, window_start, window_end, order_count,
                total_revenue, avg_order_value, final, finalized_at, late_count, late_revenue, updated_at)
            SELECT p.product_id, p.name, m, m + interval '1 minute', 5, 500, 100, m < %(end)s::timestamptz - interval '5 minutes',
                   m, 0, 0, m
            FROM generate_series(%(end)s::timestamptz - interval '60 days', %(end)s::timestamptz, interval '1 minute') m
            CROSS JOIN streams_product p WHERE p.product_id <> 'prod-6'
        """, {"end": END})
        cursor.execute("""
            INSERT INTO streams_machinemetric (parameter_id, value, time, received_at)
            SELECT i %% 50, i * 0.5, %(epoch)s - (%(n)s - i) / 50 * 10, %(end)s
            FROM generate_series(0, %(n)s - 1) i
        """, {"n": METRICS, "epoch": int(END.timestamp()), "end": END})
        cursor.execute("""
            INSERT INTO streams_activityevent (event_id, origin_topic, origin_partition, origin_offset, timestamp,
                stored_at, user_id, session_id, action, details)
            SELECT 'user_activity:0:' || i, 'user_activity', 0, i,
                   %(end)s::timestamptz - make_interval(secs => (%(n)s - i) * 8.64), %(end)s,
                   'u' || (i %% 20000), 's' || (i / 10), (ARRAY['click', 'view', 'buy'])[1 + i %% 3], NULL
            FROM generate_series(1, %(n)s) i
        """, {"n": EVENTS, "end": END})
        for table in sorted(BIG):
            cursor.execute(f"ANALYZE {table}")


def explain(sql: str) -> dict:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql)
        raw = cursor.fetchone()[0]
    return (json.loads(raw) if isinstance(raw, str) else raw)[0]


def nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


def rows_read(node: dict) -> int:
    """Rows a node produced or threw away, over all its loops."""
    per_loop = node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0) \
        + node.get("Rows Removed by Index Recheck", 0)
    return int(per_loop * node.get("Actual Loops", 1))


def check_page(client, url: str, report: list, **params) -> dict:
    """Open the page, explain each query it sent to a large table, and say what was wrong."""
    started = time.perf_counter()
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, params)
    elapsed = (time.perf_counter() - started) * 1000
    assert response.status_code == 200, (url, params, response.status_code)
    problems, most = [], 0
    for query in queries.captured_queries:
        sql = query["sql"]
        if not sql.lstrip().upper().startswith(("SELECT", "WITH")) or not any(t in sql for t in BIG):
            continue
        assert "COUNT(*) AS " not in sql.upper() or "LIMIT" in sql.upper(), f"{url} {params} counts a table: {sql}"
        plan = explain(sql)["Plan"]
        for node in nodes(plan):
            read = rows_read(node)
            most = max(most, read)
            if node["Node Type"] == "Seq Scan" and node.get("Relation Name") in BIG:
                problems.append(f"Seq Scan on {node['Relation Name']}: {sql}")
            elif read > ROWS_BOUND:
                problems.append(f"{node['Node Type']} read {read:,} rows: {sql}")
    report.append((url + ("?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else ""),
                   elapsed, most))
    assert not problems, "\n".join([f"{url} {params}:"] + problems)
    return response


@pytest.mark.django_db
def test_pages_of_large_tables_read_no_whole_table(client):
    started = time.perf_counter()
    preload()
    loaded = time.perf_counter() - started
    staff = User.objects.create_user("operator", is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(content_type__app_label="streams", codename__in=[
        "view_processedorder", "view_productwindow", "view_machinemetric", "view_activityevent"]))
    client.force_login(staff)
    report: list = []
    client.get("/admin/streams/machinemetric/", {"window": "all"})  # the process's first page: templates load

    # Admin › processed orders: the last day before the newest order by default (~33,000 of 2,000,000).
    page = check_page(client, "/admin/streams/processedorder/", report).content.decode()
    assert "hist-2000000" in page and "10,000+" in page  # the newest first; the count stops at its cap
    assert "hist-1000000" not in page
    for params in ({"late__exact": "1"}, {"late__exact": "0"}, {"released": "yes"}, {"released": "no"},
                   {"product_id__exact": "prod-2"}, {"product_id__exact": "prod-6"},
                   {"category__exact": "Other"}, {"category__exact": "Mobile"},
                   {"window": "1h"}, {"window": "7d"}, {"window": "all"}, {"p": "100"},
                   {"late__exact": "1", "window": "all"}, {"released": "yes", "window": "all"}):
        check_page(client, "/admin/streams/processedorder/", report, **params)
    found = check_page(client, "/admin/streams/processedorder/", report, q="hist-17").content.decode()
    assert "hist-17<" in found or 'hist-17"' in found  # an order 60 days old: a search by key has no window
    users = check_page(client, "/admin/streams/processedorder/", report, q="user-42").content.decode()
    assert "hist-1900042" in users and "hist-17<" not in users

    # Admin › order windows (5 products, one window a minute each, 60 days).
    check_page(client, "/admin/streams/productwindow/", report)
    for params in ({"final__exact": "1"}, {"final__exact": "0"}, {"product_id__exact": "prod-3"},
                   {"q": "prod-2"}, {"q": "laptop"}, {"window": "all"}, {"window": "all", "product_id__exact": "prod-1"}):
        check_page(client, "/admin/streams/productwindow/", report, **params)

    # Admin › machine metrics: the last hour before the newest reading by default.
    check_page(client, "/admin/streams/machinemetric/", report)
    for params in ({"parameter_id": "7"}, {"q": "7"}, {"window": "24h"}, {"window": "all"},
                   {"window": "all", "parameter_id": "7"}):
        check_page(client, "/admin/streams/machinemetric/", report, **params)

    # Admin › activity events.
    check_page(client, "/admin/streams/activityevent/", report)
    for params in ({"action__exact": "buy"}, {"q": "u42"}, {"q": "s7"}, {"q": "user_activity:0:17"}):
        check_page(client, "/admin/streams/activityevent/", report, **params)

    # API: processed orders, each filter, and the pages behind a cursor.
    api = "/api/processed-orders/"
    for params in ({}, {"user_id": "user-42"}, {"late": "true"}, {"released": "true"}, {"late": "false"},
                   {"product_id": "prod-6"}, {"order_id": "hist-17"}, {"since": "2026-05-01T00:00:00Z"}):
        body = check_page(client, api, report, **params).json()
    body = check_page(client, api, report, user_id="user-42", limit=5).json()
    assert [r["order_id"] for r in body["results"]][:2] == ["hist-1900042", "hist-1800042"]
    late = check_page(client, api, report, late="true", limit=500).json()
    assert len(late["results"]) == 500 and all(r["late"] for r in late["results"])
    deep = late
    for _ in range(2):
        deep = client.get(deep["next"]).json()
    check_page(client, deep["next"], report)

    # API: order windows page by cursor, however deep.
    check_page(client, "/api/order-windows/", report)
    windows = client.get("/api/order-windows/", {"limit": 500}).json()
    assert "count" not in windows and windows["next"]
    for _ in range(40):  # 20,000 windows deep
        windows = client.get(windows["next"]).json()
    deep = check_page(client, windows["next"].replace("limit=500", "limit=50"), report).json()
    assert len(deep["results"]) == 50 and deep["results"][0]["window_start"] < windows["results"][-1]["window_start"]
    for params in ({"product_id": "prod-4"}, {"final": "false"}, {"since": "2026-06-01T00:00:00Z"}):
        check_page(client, "/api/order-windows/", report, **params)

    # API: metrics, and activity events.
    check_page(client, "/api/metrics/", report)
    metrics = client.get("/api/metrics/", {"limit": 500}).json()
    for _ in range(40):
        metrics = client.get(metrics["next"]).json()
    check_page(client, metrics["next"].replace("limit=500", "limit=50"), report)
    for params in ({"parameter_id": "7"}, {"time": str(int(END.timestamp()))}):
        check_page(client, "/api/metrics/", report, **params)
    for params in ({}, {"user_id": "u42"}, {"session_id": "s7"}, {"action": "buy"}):
        check_page(client, "/api/activity-events/", report, **params)

    # The other lists of these tables, empty here: their filters, search and time window answer.
    staff.user_permissions.add(*Permission.objects.filter(codename__in=[
        "view_workorderreading", "view_telemetryoverwrite", "view_sensorreading"]))
    for url, params in (("workorderreading", {"product": "3", "window": "7d"}), ("workorderreading", {"q": "3"}),
                        ("telemetryoverwrite", {"q": "5", "kind__exact": "metric"}), ("telemetryoverwrite", {"q": "x"}),
                        ("sensorreading", {"status__exact": "Low"}), ("sensorreading", {"q": "sensor_data:0:1"}),
                        ("sensorreading", {"q": "s-1", "window": "1h"})):
        assert client.get(f"/admin/streams/{url}/", params).status_code == 200, (url, params)
    assert client.get("/admin/streams/processedorder/", {"window": "2y"}).status_code == 302  # ?e=1: unknown

    print(f"\npreloaded {ORDERS:,} orders, {METRICS:,} metrics, {EVENTS:,} events in {loaded:.1f} s")
    for url, ms, most in report:
        print(f"{ms:8.1f} ms  {most:>8,} rows at most  {url}")
