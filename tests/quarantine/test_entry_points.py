"""The admin, the API and `manage.py quarantine` on the same services."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.urls import reverse
from rest_framework.test import APIClient

from quarantine.models import QuarantineRecord

from .conftest import BAD_METRIC, PASSWORD, dead_letter

Status = QuarantineRecord.Status
pytestmark = pytest.mark.django_db


def api(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def admin_client(client, user: User):
    client.force_login(user)  # django-axes wants a request for a password login: tests/console/test_security.py
    return client


# ----------------------------------------------------------------------- API


def test_api_lists_with_filters_and_shows_the_audit_trail(viewer, operator):
    message = dead_letter("metrics", BAD_METRIC)
    dead_letter("orders", {"order_id": 1}, reason="unknown product", consumer="orders")
    url = reverse("quarantine-record-list")

    body = api(viewer).get(url, {"source": "message", "topic": "metrics"}).json()
    assert body["count"] == 1 and body["results"][0]["id"] == message.pk
    assert api(viewer).get(url, {"search": "unknown product"}).json()["count"] == 1
    assert api(viewer).get(url, {"reason": "INVALID FIELDS"}).json()["count"] == 1

    api(operator).post(reverse("quarantine-record-discard", args=[message.pk]), {"reason": "noise"}, format="json")
    detail = api(viewer).get(reverse("quarantine-record-detail", args=[message.pk])).json()
    assert detail["status"] == "discarded"
    assert detail["errors"][0]["field"] == "id"
    assert detail["payload"] == '{"id":"ten","val":1.5,"time":1624378100}'
    [entry] = detail["audit_entries"]
    assert (entry["actor_name"], entry["action"], entry["outcome"], entry["reason"]) == \
        ("olivia", "discard", "succeeded", "noise")


def test_api_requires_authentication_and_permissions(viewer):
    record = dead_letter("metrics", BAD_METRIC)
    assert api(None).get(reverse("quarantine-record-list")).status_code in (401, 403)
    nobody = User.objects.create_user("nobody", password=PASSWORD)
    assert api(nobody).get(reverse("quarantine-record-list")).status_code == 403

    response = api(viewer).post(reverse("quarantine-record-release", args=[record.pk]), {}, format="json")
    assert response.status_code == 403
    response = api(viewer).post(reverse("quarantine-record-bulk-discard"), {"ids": [record.pk], "reason": "x"},
                                format="json")
    assert response.status_code == 403
    record.refresh_from_db()
    assert record.status == Status.OPEN and not record.audit_entries.exists()


def test_api_actions_answer_with_clear_errors(operator, kafka, settings):
    settings.QUARANTINE_MAX_REPLAYS = 1
    record = dead_letter(kafka.name("metrics"), BAD_METRIC, replay_count=1)

    response = api(operator).post(reverse("quarantine-record-discard", args=[record.pk]), {}, format="json")
    assert response.status_code == 400 and "reason" in response.json()

    response = api(operator).post(reverse("quarantine-record-release", args=[record.pk]), {}, format="json")
    assert response.status_code == 409
    assert response.json()["outcome"] == "refused" and "QUARANTINE_MAX_REPLAYS" in response.json()["detail"]

    response = api(operator).post(reverse("quarantine-record-reprocess", args=[record.pk]),
                                  {"payload": {"id": 10, "val": 1.5, "time": 1624378100}}, format="json")
    assert response.status_code == 409, "the limit applies to edited re-drives too"


def test_api_reprocess_with_an_edited_payload_and_bulk_discard_of_a_filtered_selection(operator, kafka):
    record = dead_letter(kafka.name("metrics"), BAD_METRIC)
    response = api(operator).post(reverse("quarantine-record-reprocess", args=[record.pk]),
                                  {"payload": {"id": 10, "val": 1.5, "time": 1624378100}, "reason": "typo"},
                                  format="json")
    assert response.status_code == 200, response.content
    assert response.json()["outcome"] == "succeeded"
    [message] = kafka.read("metrics", expected=1)
    assert message.value() == b'{"id":10,"val":1.5,"time":1624378100}'

    noise = [dead_letter("orders", {"n": i}, consumer="orders") for i in range(3)]
    url = reverse("quarantine-record-bulk-discard")
    response = api(operator).post(url + "?consumer=orders", {"reason": "load test"}, format="json")
    assert response.status_code == 400, "without ids, all_matching must be explicit"
    response = api(operator).post(url + "?consumer=orders", {"reason": "load test", "all_matching": True},
                                  format="json")
    assert response.status_code == 200 and response.json()["counts"] == {"succeeded": 3}
    assert {r.status for r in QuarantineRecord.objects.filter(pk__in=[n.pk for n in noise])} == {Status.DISCARDED}
    record.refresh_from_db()
    assert record.status == Status.REPROCESSED, "outside the filter: untouched"


# --------------------------------------------------------------------- admin


def test_admin_detail_shows_errors_and_highlights_bad_fields(client, viewer):
    record = dead_letter("metrics", BAD_METRIC)
    page = admin_client(client, viewer).get(reverse("admin:quarantine_quarantinerecord_change", args=[record.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    assert 'id="q-errors-table"' in html and "must be an integer" in html
    assert '<td class="q-bad">id</td>' in html and '<td class="q-bad">&quot;ten&quot;</td>' in html
    assert 'id="q-release"' not in html, "a viewer sees no action buttons"
    assert "Audit trail" in html


def test_admin_viewer_cannot_act(client, viewer):
    record = dead_letter("metrics", BAD_METRIC)
    admin_client(client, viewer)
    for name in ("release", "reprocess", "discard"):
        url = reverse(f"admin:quarantine_quarantinerecord_{name}", args=[record.pk])
        assert client.get(url).status_code == 403
        assert client.post(url, {"reason": "x"}).status_code == 403
    changelist = client.get(reverse("admin:quarantine_quarantinerecord_changelist"))
    assert changelist.status_code == 200
    assert "release_selected" not in changelist.content.decode()
    record.refresh_from_db()
    assert record.status == Status.OPEN


def test_admin_discard_page_confirms_audits_and_logs(client, operator):
    record = dead_letter("metrics", BAD_METRIC)
    admin_client(client, operator)
    url = reverse("admin:quarantine_quarantinerecord_discard", args=[record.pk])
    page = client.get(url)
    assert page.status_code == 200 and "Yes, discard" in page.content.decode()
    assert "This field is required" in client.post(url, {"reason": ""}).content.decode()

    response = client.post(url, {"reason": "replayed by mistake"}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("admin:quarantine_quarantinerecord_change", args=[record.pk])
    assert "Discarded record" in response.content.decode()
    record.refresh_from_db()
    assert record.status == Status.DISCARDED
    assert LogEntry.objects.filter(object_id=str(record.pk), user=operator).exists()
    assert record.audit_entries.get().reason == "replayed by mistake"


def test_admin_reprocess_form_edits_the_payload(client, operator, kafka):
    record = dead_letter(kafka.name("metrics"), BAD_METRIC)
    admin_client(client, operator)
    url = reverse("admin:quarantine_quarantinerecord_reprocess", args=[record.pk])
    assert "&quot;ten&quot;" in client.get(url).content.decode(), "the form starts from the original payload"
    assert "Not valid JSON" in client.post(url, {"payload": "{oops"}).content.decode()

    client.post(url, {"payload": '{"id": 10, "val": 1.5, "time": 1624378100}', "reason": "fixed id"})
    [message] = kafka.read("metrics", expected=1)
    assert message.value() == b'{"id":10,"val":1.5,"time":1624378100}'
    record.refresh_from_db()
    assert record.status == Status.REPROCESSED


def test_admin_bulk_discard_asks_for_a_reason_then_applies_to_the_filtered_selection(client, operator):
    keep = dead_letter("metrics", BAD_METRIC)
    noise = [dead_letter("orders", {"n": i}, consumer="orders") for i in range(3)]
    admin_client(client, operator)
    changelist = reverse("admin:quarantine_quarantinerecord_changelist") + "?consumer=orders"
    form = {"action": "discard_selected", "select_across": "1", "index": "0",
            "_selected_action": [str(noise[0].pk)]}
    page = client.post(changelist, form)
    assert page.status_code == 200 and "Discard 3 record(s)?" in page.content.decode()

    response = client.post(changelist, {**form, "apply": "yes", "reason": "load test"}, follow=True)
    assert "discard: 3 succeeded" in response.content.decode().lower()
    assert QuarantineRecord.objects.filter(status=Status.DISCARDED).count() == 3
    keep.refresh_from_db()
    assert keep.status == Status.OPEN
    assert LogEntry.objects.filter(change_message__startswith="discard (bulk)").count() == 3


def test_admin_list_filters_and_search(client, viewer):
    dead_letter("metrics", BAD_METRIC)
    dead_letter("orders", {"n": 1}, reason="unknown product 42", consumer="orders")
    admin_client(client, viewer)
    url = reverse("admin:quarantine_quarantinerecord_changelist")
    found = client.get(url, {"q": "unknown product"}).context["cl"]
    assert [r.reason for r in found.result_list] == ["unknown product 42"]
    filtered = client.get(url, {"source": "message", "status": "open", "reason": "unknown product 42"}).context["cl"]
    assert [r.reason for r in filtered.result_list] == ["unknown product 42"]
    assert client.get(url, {"source": "file"}).context["cl"].result_count == 0


# ------------------------------------------------------------------- command


def test_command_lists_shows_and_acts_with_dry_run(operator, capsys):
    record = dead_letter("metrics", BAD_METRIC)
    call_command("quarantine", "list", "--status", "open")
    assert f"{record.pk}" in capsys.readouterr().out
    call_command("quarantine", "show", str(record.pk))
    out = capsys.readouterr().out
    assert "must be an integer" in out and "audit trail" in out

    call_command("quarantine", "discard", str(record.pk), "--user", "olivia", "--reason", "noise", "--dry-run")
    assert "dry run" in capsys.readouterr().out
    record.refresh_from_db()
    assert record.status == Status.OPEN

    call_command("quarantine", "discard", str(record.pk), "--user", "olivia", "--reason", "noise")
    record.refresh_from_db()
    assert record.status == Status.DISCARDED
    with pytest.raises(CommandError, match="only open records"):
        call_command("quarantine", "discard", str(record.pk), "--user", "olivia", "--reason", "again")


def test_command_checks_the_user_and_the_reason(viewer, operator):
    record = dead_letter("metrics", BAD_METRIC)
    with pytest.raises(CommandError, match="lacks the permission"):
        call_command("quarantine", "release", str(record.pk), "--user", "victor")
    with pytest.raises(CommandError, match="--reason is required"):
        call_command("quarantine", "discard", str(record.pk), "--user", "olivia")
    with pytest.raises(CommandError, match="no quarantine record"):
        call_command("quarantine", "release", "999999", "--user", "olivia")
    with pytest.raises(CommandError, match="--all"):
        call_command("quarantine", "release", "--user", "olivia")


def test_admin_task_record_shows_traceback_and_its_arguments(client, operator):
    from quarantine.services import quarantine_task_failure

    try:
        1 / 0
    except ZeroDivisionError as exc:
        record = quarantine_task_failure(task_name="ingest.process_file", task_id="t-1", args=[42],
                                         kwargs={"force": True}, exception=exc)
    assert quarantine_task_failure(task_name="ingest.process_file", task_id="t-1", args=[42], kwargs={},
                                   exception=ZeroDivisionError("again")) is None, "recorded once per task id"
    admin_client(client, operator)
    html = client.get(reverse("admin:quarantine_quarantinerecord_change", args=[record.pk])).content.decode()
    assert "ZeroDivisionError" in html and 'id="q-traceback"' in html and "Traceback" in html
    form = client.get(reverse("admin:quarantine_quarantinerecord_reprocess", args=[record.pk])).content.decode()
    assert "&quot;force&quot;: true" in form


def test_admin_file_record_previews_bad_cells_and_downloads_neutralized_rejected_rows(client, viewer, settings,
                                                                                       tmp_path):
    from quarantine.services import quarantine_file

    settings.INGEST_QUARANTINE_DIR = tmp_path
    header = '"ts","device","co","humidity","light","lpg","motion","smoke","temp"\n'
    good = '"1594512094.0","b8:27:eb:bf:9d:51","0.004","51.0","False","0.007","False","0.02","22.7"\n'
    bad = '"1594512095.0","b8:27:eb:bf:9d:51","0.004","51.0","False","0.007","False","0.02","=cmd|\' /C calc\'!A0"\n'
    path = tmp_path / "upload.csv"
    path.write_text(header + good + bad)
    record = quarantine_file(file_path=str(path), file_name="upload.csv", checksum="c" * 64,
                             reason="upload.csv: 1 invalid row", error_count=1,
                             errors=[{"line": 3, "column": "temp", "value": "=cmd|' /C calc'!A0",
                                      "rule": "number", "message": "not a number"}])
    admin_client(client, viewer)
    html = client.get(reverse("admin:quarantine_quarantinerecord_change", args=[record.pk])).content.decode()
    assert 'id="q-rows-table"' in html and "<td>3</td>" in html
    assert 'class="q-bad" title="not a number">=cmd|&#x27; /C calc&#x27;!A0</td>' in html
    assert 'id="q-release"' not in html

    original = client.get(reverse("admin:quarantine_quarantinerecord_original", args=[record.pk]))
    assert b"".join(original.streaming_content) == path.read_bytes()
    rejected = client.get(reverse("admin:quarantine_quarantinerecord_rejected", args=[record.pk]))
    lines = b"".join(rejected.streaming_content).decode().splitlines()
    assert lines[0] == "ts,device,co,humidity,light,lpg,motion,smoke,temp"
    assert lines[1:] == ["1594512095.0,b8:27:eb:bf:9d:51,0.004,51.0,False,0.007,False,0.02,'=cmd|' /C calc'!A0"]
