"""The quarantine console in a real browser: Playwright driving Debian's
Chromium (`make browser-deps`) against pytest-django's live server, with the
real broker and a real `telemetry` consumer subprocess."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from quarantine.models import QuarantineRecord
from streams.kafka.producer import Outbound, produce_and_wait
from streams.models import MachineMetric
from tests.conftest import ROOT, wait_until

from .conftest import BAD_METRIC, PASSWORD

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
# `make screenshots` refreshes the README's pictures; a plain test run keeps its own under .run/.
SCREENSHOT = Path(os.environ.get("SCREENSHOT_DIR") or ROOT / ".run" / "screenshots") / "quarantine.png"
SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: run `make browser-deps`")
    sync_api = pytest.importorskip("playwright.sync_api")
    # Playwright's sync API runs an event loop in this thread; the ORM calls
    # the tests make between browser steps are still synchronous.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_api.sync_playwright().start()
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield browser
    browser.close()
    playwright.stop()
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=live_server.url)
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


def log_in(page, username: str) -> None:
    page.goto("/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#user-tools")


def dead_lettered_metric(kafka, processes, value: dict) -> tuple[object, QuarantineRecord]:
    """Send a bad metric through the real telemetry consumer until it is quarantined."""
    produce_and_wait([Outbound(kafka.name("metrics"), value, key="10")])
    consumer = processes.consumer("telemetry", "--batch-time", "50")
    record = wait_until(lambda: QuarantineRecord.objects.filter(topic=kafka.name("metrics")).first(),
                        message="the dead-lettered metric")
    return consumer, record


def open_record(page, record: QuarantineRecord) -> None:
    page.goto("/admin/quarantine/quarantinerecord/?status=open")
    page.click(f"#result_list a[href*='/{record.pk}/change/']")
    page.wait_for_selector("#q-errors-table")


def test_operator_reviews_and_releases_a_dead_lettered_message(page, live_server, kafka, processes, operator):
    consumer, record = dead_lettered_metric(kafka, processes, BAD_METRIC)
    log_in(page, "olivia")

    # The admin's own stylesheet is served (whitenoise, finders) and applied.
    css = page.request.get(f"{live_server.url}/static/admin/css/base.css")
    assert css.ok and "--primary" in css.text()
    open_record(page, record)
    header_bg = page.eval_on_selector("#header", "e => getComputedStyle(e).backgroundColor")
    assert header_bg not in ("rgba(0, 0, 0, 0)", "transparent"), "admin CSS did not load"

    # The errors, as a table, and the bad field highlighted in the payload.
    errors = page.inner_text("#q-errors-table")
    assert "id" in errors and "must be an integer" in errors
    highlighted = page.locator("#q-payload-table td.q-bad").all_inner_texts()
    assert highlighted[:2] == ["id", '"ten"']
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    page.click("#q-release")
    page.fill("#id_reason", "telemetry consumer redeployed")
    page.click("#q-confirm")
    page.wait_for_selector(".messagelist .success")
    assert "Re-drove record" in page.inner_text(".messagelist")
    assert page.inner_text("#q-status") == "Released"
    audit = page.inner_text("#audit_entries-group")
    assert "olivia" in audit and "telemetry consumer redeployed" in audit and "succeeded" in audit.lower()
    assert not page.locator("#q-release").count(), "a released record cannot be released again"

    # Still invalid, the re-driven message comes back once, carrying its replay count.
    again = wait_until(lambda: QuarantineRecord.objects.exclude(pk=record.pk).filter(
        topic=kafka.name("metrics")).first(), message="the re-driven message back in quarantine")
    assert again.replay_count == 1
    assert consumer.poll() is None


def test_viewer_can_read_but_cannot_release(page, live_server, kafka, processes, viewer):
    _, record = dead_lettered_metric(kafka, processes, BAD_METRIC)
    log_in(page, "victor")
    open_record(page, record)
    assert "must be an integer" in page.inner_text("#q-errors-table")
    for button in ("#q-release", "#q-reprocess", "#q-discard"):
        assert page.locator(button).count() == 0

    page.goto("/admin/quarantine/quarantinerecord/")
    assert not page.locator("select[name=action] option[value=release_selected]").count()
    response = page.goto(f"/admin/quarantine/quarantinerecord/{record.pk}/release/")
    assert response.status == 403
    record.refresh_from_db()
    assert record.status == QuarantineRecord.Status.OPEN and not record.audit_entries.exists()


def test_edited_message_is_redriven_and_reaches_its_destination(page, live_server, kafka, processes, operator):
    bad = {"id": 10, "val": "high", "time": 1624378100}
    consumer, record = dead_lettered_metric(kafka, processes, bad)
    assert MachineMetric.objects.count() == 0
    log_in(page, "olivia")
    open_record(page, record)
    assert page.locator("#q-payload-table td.q-bad").all_inner_texts()[:2] == ["val", '"high"']

    page.click("#q-reprocess")
    edited = page.input_value("#id_payload")
    assert json.loads(edited) == bad
    page.fill("#id_payload", re.sub(r'"high"', "41.5", edited))
    page.fill("#id_reason", "sensor sent a label instead of the reading")
    page.click("#q-confirm")
    page.wait_for_selector(".messagelist .success")
    assert page.inner_text("#q-status") == "Reprocessed"

    metric = wait_until(lambda: MachineMetric.objects.filter(parameter_id=10, time=1624378100).first(),
                        message="the corrected metric stored by the telemetry consumer")
    assert metric.value == 41.5
    assert QuarantineRecord.objects.count() == 1, "the corrected message was not rejected again"
    assert "sensor sent a label" in page.inner_text("#audit_entries-group")
    assert consumer.poll() is None


def test_operator_releases_a_quarantined_file_and_sees_the_rows_loaded(page, live_server, operator, settings,
                                                                       tmp_path):
    ingest_services = pytest.importorskip("ingest.services")
    if not hasattr(ingest_services, "quarantined_file_release"):
        pytest.skip("the ingest branch (quarantined_file_* services) is not merged")
    from ingest.models import IngestedFile
    from tests.ingest.conftest import HEADER, rows

    inbox, quarantine_dir = tmp_path / "inbox", tmp_path / "quarantine"
    inbox.mkdir()
    quarantine_dir.mkdir()
    settings.INGEST_INBOX_DIR, settings.INGEST_QUARANTINE_DIR = inbox, quarantine_dir
    bad = '"1594512999.0","b8:27:eb:bf:9d:51","0.004","51.0","True","0.007","False","0.02","-100.0"\n'
    (inbox / "sensors-0612.csv").write_text(HEADER + rows(40) + bad + rows(40, start=1594600000.0))
    registered = ingest_services.file_register(file_path="sensors-0612.csv", file_name="sensors-0612.csv")
    record = ingest_services.file_process(file_id=registered.id).quarantine
    assert record is not None

    log_in(page, "olivia")
    page.goto("/admin/quarantine/quarantinerecord/?source=file")
    page.click(f"#result_list a[href*='/{record.pk}/change/']")
    errors = page.inner_text("#q-errors-table")
    assert "42" in errors and "temp" in errors
    assert "-100.0" in page.locator("#q-rows-table td.q-bad").all_inner_texts()
    assert page.locator("#q-download-rejected").count() == 1
    page.screenshot(path=str(SCREENSHOT.with_name("quarantine-file.png")), full_page=True)

    page.click("#q-release")
    page.check("input[name=mode][value=valid_rows]")
    page.fill("#id_reason", "sensor glitch, drop the row")
    page.click("#q-confirm")
    page.wait_for_selector(".messagelist .success")
    assert "80 rows loaded" in page.inner_text(".messagelist")
    assert page.inner_text("#q-status") == "Released"
    audit = page.inner_text("#audit_entries-group")
    assert "sensor glitch" in audit and "ingested_file.rows_loaded: 80" in audit
    assert IngestedFile.objects.get(id=registered.id).rows_loaded == 80


def test_an_order_for_an_unknown_product_is_edited_and_reaches_the_window_totals(page, live_server, kafka,
                                                                                 processes, operator):
    from decimal import Decimal

    from streams.models import ProductWindow
    from streams.orders.demo import catalog_seed_demo

    catalog_seed_demo(count=5)
    order = {"order_id": "order-redriven-1", "user_id": "user-7", "product_id": "prod-404", "amount": 42.5,
             "timestamp": "2026-01-05T12:00:30+00:00"}
    produce_and_wait([Outbound(kafka.name("orders"), order, key="prod-404")])
    processes.consumer("orders", "--batch-time", "50")
    processes.consumer("order_windows", "--batch-time", "50")
    record = wait_until(lambda: QuarantineRecord.objects.filter(consumer="orders").first(),
                        message="the order for an unknown product in quarantine")
    assert "prod-404" in record.reason

    log_in(page, "olivia")
    open_record(page, record)
    page.click("#q-reprocess")
    page.fill("#id_payload", page.input_value("#id_payload").replace("prod-404", "prod-1"))
    page.fill("#id_reason", "the shop renamed prod-404 to prod-1")
    page.click("#q-confirm")
    page.wait_for_selector(".messagelist .success")

    window = wait_until(lambda: ProductWindow.objects.filter(product_id="prod-1").first(),
                        message="the re-driven order in the window totals")
    assert (window.order_count, window.total_revenue) == (1, Decimal("42.50"))
    assert QuarantineRecord.objects.count() == 1
