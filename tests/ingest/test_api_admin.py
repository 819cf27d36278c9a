"""DRF endpoints and admin screens of file ingestion."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from ingest.models import SensorAggregate
from tests.ingest.conftest import HEADER, rows

pytestmark = pytest.mark.django_db


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def admin_user():
    return User.objects.create_superuser("root", "root@example.com", "pw")


def test_upload_requires_authentication(api, inbox):
    response = api.post("/api/files/", {"file": SimpleUploadedFile("a.csv", b"x")}, format="multipart")
    assert response.status_code in (401, 403)
    assert not any(inbox.root.rglob("*.csv"))


def test_upload_needs_the_upload_permission(api, inbox):
    """A service token (telemetry-publishers) or a reader may not write into the inbox."""
    from django.contrib.auth.models import Group, Permission

    service = User.objects.create_user("svc-upload")
    service.groups.add(Group.objects.get(name="telemetry-publishers"))
    reader = User.objects.create_user("reader-upload")
    reader.user_permissions.add(*Permission.objects.filter(content_type__app_label="ingest",
                                                           codename__startswith="view_"))
    for user in (service, reader):
        api.force_authenticate(user)
        response = api.post("/api/files/", {"file": SimpleUploadedFile("a.csv", b"x")}, format="multipart")
        assert response.status_code == 403, user
    uploader = User.objects.create_user("uploader")  # as `create_service_token NAME --group file-uploaders`
    uploader.groups.add(Group.objects.get(name="file-uploaders"))
    api.force_authenticate(uploader)
    response = api.post("/api/files/", {"file": SimpleUploadedFile("notes.txt", b"x")}, format="multipart")
    assert response.status_code == 400  # past the permission: the file's own checks
    assert not any(inbox.root.rglob("*.csv"))


def test_upload_rejects_non_csv_with_field_error(api, inbox, admin_user):
    api.force_authenticate(admin_user)
    response = api.post("/api/files/", {"file": SimpleUploadedFile("notes.txt", b"hello")}, format="multipart")
    assert response.status_code == 400
    assert response.json() == {"file": ["only .csv files are accepted"]}


def test_upload_stores_in_inbox_and_announces(api, inbox, admin_user, kafka):
    api.force_authenticate(admin_user)
    content = (HEADER + rows(20)).encode()
    response = api.post("/api/files/", {"file": SimpleUploadedFile("../../evil name.csv", content)},
                        format="multipart")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["file_name"] == "evil_name.csv" and body["size"] == len(content)
    stored = inbox.root / body["file_path"]
    assert stored.read_bytes() == content and stored.parent == inbox.root / "uploads"
    [event] = kafka.read("file_events", expected=1)
    assert json.loads(event.value()) == {"file_path": body["file_path"], "file_name": "evil_name.csv"}
    # What the consumer and the task then do, and how the API shows it.
    ingested = inbox.process(body["file_path"])
    assert ingested.status == "loaded"
    listed = api.get("/api/files/?status=loaded").json()
    assert listed["count"] == 1 and listed["results"][0]["rows_loaded"] == 20
    detail = api.get(f"/api/files/{ingested.id}/").json()
    assert detail["checksum"] == body["checksum"] and detail["errors"] == []


def test_readings_and_aggregates_endpoints(api, inbox, admin_user):
    a = inbox.process(inbox.drop("a.csv", HEADER + rows(30, device="dev-a")))
    inbox.process(inbox.drop("b.csv", HEADER + rows(10, device="dev-b", start=1600000000.0)))
    assert api.get("/api/sensor-aggregates/").status_code == 401
    api.force_authenticate(admin_user)
    page = api.get("/api/raw-sensor-data/?device=dev-a&page_size=25").json()
    assert len(page["results"]) == 25 and page["next"] and "count" not in page
    assert {r["device"] for r in page["results"]} == {"dev-a"}
    window = api.get("/api/raw-sensor-data/", {"since": "2020-09-13T12:26:40Z", "until": "2020-09-13T12:26:45Z"})
    assert [r["ts"] for r in window.json()["results"]] == [1600000004.0, 1600000003.0, 1600000002.0,
                                                           1600000001.0, 1600000000.0]
    stats = api.get(f"/api/sensor-aggregates/?file={a.id}&metric=temp").json()
    assert stats["count"] == 1 and stats["results"][0]["count"] == 30 and stats["results"][0]["scope"] == "file"
    assert api.post("/api/raw-sensor-data/", {}).status_code in (401, 403, 405)


def test_admin_screens(client, inbox, admin_user):
    ingested = inbox.process(inbox.drop("a.csv", HEADER + rows(30, device="dev-a")))
    bad = inbox.process(inbox.drop("bad.csv", HEADER + '"x","d","0.1","50","True","0.1","False","0.1","20"\n'))
    SensorAggregate.objects.create(device="dev-a", metric="temp", count=30)  # an overall row for the filter
    client.force_login(admin_user)
    files = client.get("/admin/ingest/ingestedfile/")
    assert files.status_code == 200 and b"<progress" in files.content and b"1 error(s)" in files.content
    detail = client.get(f"/admin/ingest/ingestedfile/{bad.id}/change/")
    assert detail.status_code == 200 and b'id="errors"' in detail.content and b"number" in detail.content
    readings = client.get("/admin/ingest/rawsensorreading/?device=dev-a&window=24h")
    assert readings.status_code == 200 and b"dev-a" in readings.content
    ranged = client.get("/admin/ingest/rawsensorreading/?recorded_at__gte=2020-01-01T00:00:00Z&recorded_at__lt=2030-01-01T00:00:00Z")
    assert ranged.status_code == 200
    assert client.get("/admin/ingest/sensoraggregate/").status_code == 200
    assert client.get(f"/admin/ingest/ingestedfile/{ingested.id}/change/").status_code == 200


def test_admin_action_requeues_failed_files(client, inbox, admin_user, django_capture_on_commit_callbacks):
    from django.contrib.admin.models import LogEntry

    from ingest.services import file_mark_failed, file_register

    inbox.drop("a.csv", HEADER + rows(5))
    with django_capture_on_commit_callbacks(execute=False):
        ingested = file_register(file_path="a.csv", file_name="a.csv")
    file_mark_failed(file_id=ingested.id, reason="OperationalError: the database went away")
    viewer = User.objects.create_user("viewer", password="pw")
    from django.contrib.auth.models import Permission

    viewer.user_permissions.add(Permission.objects.get(codename="view_ingestedfile"))
    viewer.is_staff = True
    viewer.save()
    client.force_login(viewer)
    page = client.get("/admin/ingest/ingestedfile/")
    assert b"requeue_failed" not in page.content  # no permission, no action
    client.force_login(admin_user)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = client.post("/admin/ingest/ingestedfile/", {"action": "requeue_failed",
                                                               "_selected_action": [ingested.id]}, follow=True)
    assert b"1 file(s) queued again" in response.content
    assert len(queued) == 1
    ingested.refresh_from_db()
    assert ingested.status == "queued"
    assert LogEntry.objects.filter(object_id=str(ingested.id), change_message="Queued again for processing.").exists()


def test_raw_rows_page_newest_first_through_id_windows(api, inbox, client, admin_user, settings):
    """The raw table has no B-tree: pages read id windows (here of 7 ids, so every
    walk crosses several, with a filter that leaves some windows empty)."""
    from ingest.models import RawSensorReading

    settings.INGEST_READINGS_WINDOW = 7
    inbox.process(inbox.drop("a.csv", HEADER + rows(30, device="dev-a")))
    inbox.process(inbox.drop("b.csv", HEADER + rows(20, device="dev-b", start=1600000000.0)))
    inbox.process(inbox.drop("c.csv", HEADER + rows(9, device="dev-a", start=1700000000.0)))
    expected = list(RawSensorReading.objects.filter(device="dev-a").order_by("-id").values_list("id", flat=True))
    assert len(expected) == 39

    assert api.get("/api/raw-sensor-data/").status_code == 401  # reads need the view permission
    api.force_authenticate(admin_user)
    seen, pages, url = [], [], "/api/raw-sensor-data/?device=dev-a&page_size=4"
    while url:
        page = api.get(url).json()
        pages.append(page)
        seen += [r["id"] for r in page["results"]]
        url = page["next"]
    assert seen == expected and len(pages) == 10
    assert pages[0]["previous"] is None and pages[1]["previous"]
    back = api.get(pages[2]["previous"]).json()  # the page before the third is the second
    assert [r["id"] for r in back["results"]] == [r["id"] for r in pages[1]["results"]]
    first = api.get(back["previous"]).json()
    assert [r["id"] for r in first["results"]] == expected[:4] and first["previous"] is None

    for bad in ("before=0", "before=x", "after=-3", "page_size=0", "before=5&after=2"):
        assert api.get(f"/api/raw-sensor-data/?{bad}").status_code == 400, bad

    client.force_login(admin_user)
    settings.INGEST_READINGS_WINDOW = 16
    every = list(RawSensorReading.objects.order_by("-id").values_list("id", flat=True))
    from django.db import connection

    from ingest.admin import NewestFirstPaginator

    with connection.cursor() as cursor:  # the admin's page count is PostgreSQL's estimate
        cursor.execute("ANALYZE ingest_sensorreading")
    paginator = NewestFirstPaginator(RawSensorReading.objects.all(), 25)
    assert [r.id for r in paginator.page(2).object_list] == every[25:50]
    response = client.get("/admin/ingest/rawsensorreading/")
    assert response.status_code == 200 and f">{every[0]}<".encode() in response.content


def test_overall_refreshes_coalesce(inbox, django_capture_on_commit_callbacks):
    """Loads mark their devices; one refresh takes them all, the refreshes queued behind it find none."""
    from ingest.models import OverallRefreshPending, RawSensorReading
    from ingest.services import aggregates_refresh

    with django_capture_on_commit_callbacks(execute=False) as queued:
        inbox.process(inbox.drop("a.csv", HEADER + rows(30, device="dev-a")))
        inbox.process(inbox.drop("b.csv", HEADER + rows(20, device="dev-b", start=1600000000.0)))
        inbox.process(inbox.drop("c.csv", HEADER + rows(5, device="dev-a", start=1700000000.0)))
    assert len(queued) >= 3  # a refresh queued by every load
    assert set(OverallRefreshPending.objects.values_list("device", flat=True)) == {"dev-a", "dev-b"}
    assert aggregates_refresh() == 10  # two devices x five metrics, in one refresh
    assert not OverallRefreshPending.objects.exists()
    assert aggregates_refresh() == 0  # the refreshes queued behind it
    overall = {a.device: a for a in SensorAggregate.objects.filter(file__isnull=True, metric="temp")}
    temps = list(RawSensorReading.objects.filter(device="dev-a").values_list("temp", flat=True))
    assert overall["dev-a"].count == 35 and overall["dev-b"].count == 20
    assert overall["dev-a"].max == max(temps) and overall["dev-a"].min == min(temps)


def test_openapi_schema_documents_raw_rows_and_their_pages(api, admin_user):
    import yaml

    api.force_authenticate(admin_user)
    schema = yaml.safe_load(api.get("/api/schema/").content)
    components = schema["components"]["schemas"]
    assert "RawSensorReading" in components and "SensorReading" in components  # two models, two components
    assert "file" in components["RawSensorReading"]["properties"]
    listing = schema["paths"]["/api/raw-sensor-data/"]["get"]
    assert {"before", "after", "page_size", "device"} <= {p["name"] for p in listing["parameters"]}
    page = listing["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert set(components[page]["properties"]) == {"next", "previous", "results"}
