"""Quarantined files: the console on top of the ingest services
(`ingest.services.quarantined_file_*`), with real files in a private inbox."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

ingest_services = pytest.importorskip("ingest.services")
if not hasattr(ingest_services, "quarantined_file_release"):
    pytest.skip("the ingest branch (quarantined_file_* services) is not merged", allow_module_level=True)

from console.audit import ActionRefused  # noqa: E402
from ingest.models import IngestedFile  # noqa: E402
from quarantine import services  # noqa: E402
from quarantine.models import QuarantineRecord  # noqa: E402
from tests.ingest.conftest import HEADER, inbox, rows  # noqa: E402,F401


pytestmark = pytest.mark.django_db
Status = QuarantineRecord.Status

RANGE_BAD = '"1594512999.0","b8:27:eb:bf:9d:51","0.004","51.0","True","0.007","False","0.02","-100.0"\n'
FORMULA_BAD = '"1594513999.0","b8:27:eb:bf:9d:51","0.004","=HYPERLINK(""http://x"")","True","0.007","False","0.02","21.0"\n'


def mixed_file() -> str:
    """100 good rows; line 52 has temp -100 (range), line 103 a formula as humidity."""
    return HEADER + rows(50) + RANGE_BAD + rows(50, start=1594600000.0) + FORMULA_BAD


def quarantined(inbox, name: str = "mixed.csv") -> QuarantineRecord:
    ingested = inbox.process(inbox.drop(name, mixed_file()))
    assert ingested.status == IngestedFile.Status.QUARANTINED, ingested.reason
    return ingested.quarantine


def test_release_valid_rows_loads_them_and_audits_the_rows_loaded(inbox, operator):
    record = quarantined(inbox)
    result = services.quarantine_release(record=record, by=operator, reason="checked", mode="valid_rows")
    assert "100 rows loaded" in result.message
    record.refresh_from_db()
    assert (record.status, record.replay_count) == (Status.RELEASED, 1)
    entry = record.audit_entries.get()
    assert entry.detail["mode"] == "valid_rows" and entry.detail["ingested_file"]["rows_loaded"] == 100
    assert IngestedFile.objects.get(quarantine=record).status == IngestedFile.Status.LOADED


def test_release_as_is_needs_a_reason(inbox, operator):
    record = quarantined(inbox)
    with pytest.raises(ActionRefused, match="reason is required"):
        services.quarantine_release(record=record, by=operator, reason="", mode="as_is")
    record.refresh_from_db()
    assert record.status == Status.OPEN and record.audit_entries.get().outcome == "refused"


def test_admin_shows_the_offending_rows_and_serves_the_downloads(client, inbox, operator):
    record = quarantined(inbox)
    client.force_login(operator)  # django-axes wants a request for a password login: tests/console/test_security.py
    html = client.get(reverse("admin:quarantine_quarantinerecord_change", args=[record.pk])).content.decode()
    assert 'id="q-rows-table"' in html
    assert "<td>52</td>" in html and 'class="q-bad"' in html and "-100.0" in html

    original = client.get(reverse("admin:quarantine_quarantinerecord_original", args=[record.pk]))
    assert b"".join(original.streaming_content).decode() == mixed_file()

    rejected = client.get(reverse("admin:quarantine_quarantinerecord_rejected", args=[record.pk]))
    assert rejected["Content-Type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(b"".join(rejected.streaming_content).decode())))
    assert table[0] == ["ts", "device", "co", "humidity", "light", "lpg", "motion", "smoke", "temp"]
    assert len(table) == 3, "the header and just the two rejected rows"
    assert table[1][-1] == "'-100.0" and table[2][3] == "'=HYPERLINK(\"http://x\")", "formulas neutralized"


def test_reprocess_with_a_corrected_upload_through_the_admin(client, inbox, operator):
    record = quarantined(inbox)
    client.force_login(operator)  # django-axes wants a request for a password login: tests/console/test_security.py
    corrected = (HEADER + rows(101)).encode()
    url = reverse("admin:quarantine_quarantinerecord_reprocess", args=[record.pk])
    client.post(url, {"content": SimpleUploadedFile("mixed.csv", corrected), "reason": "fixed upstream"})
    record.refresh_from_db()
    assert record.status == Status.REPROCESSED
    entry = record.audit_entries.get()
    assert entry.detail["corrected_upload"] and entry.detail["uploaded_bytes"] == len(corrected)
    assert (inbox.root / IngestedFile.objects.get(quarantine=record).path).read_bytes() == corrected


def test_api_release_of_a_file(inbox, operator):
    from rest_framework.test import APIClient

    record = quarantined(inbox)
    client = APIClient()
    client.force_authenticate(operator)
    url = reverse("quarantine-record-release", args=[record.pk])
    response = client.post(url, {"mode": "as_is"}, format="json")
    assert response.status_code == 400 and "reason" in response.json()
    response = client.post(url, {"mode": "valid_rows", "reason": "ok"}, format="json")
    assert response.status_code == 200 and response.json()["details"]["ingested_file"]["rows_loaded"] == 100


def test_purge_after_retention_removes_the_quarantined_file(inbox, operator):
    record = quarantined(inbox)
    path = Path(ingest_services.quarantined_file_original(record=record))
    services.quarantine_discard(record=record, by=operator, reason="bad batch")
    assert path.exists(), "kept during the retention period"
    services.quarantine_purge_expired(now=timezone.now() + timedelta(days=365))
    assert not path.exists()
    record.refresh_from_db()
    assert record.purged_at is not None
    assert record.audit_entries.filter(action="purge").get().detail["file_removed"] == str(path)
