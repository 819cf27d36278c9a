"""Sensor and activity streams (seed 003): standardize -> processed_data -> sink -> CSV."""

from __future__ import annotations

import csv
import io
import json

from django.contrib.auth.models import Permission, User

from quarantine.models import QuarantineRecord
from streams.kafka.producer import Outbound, produce_and_wait
from streams.models import ActivityEvent, SensorReading
from tests.conftest import wait_until
from tests.streams.conftest import consumed


def sensor(temp: float, sensor_id: str = "s-1", ts="2026-01-05T12:00:00+02:00") -> dict:
    return {"timestamp": ts, "sensor_id": sensor_id, "temperature_celsius": temp, "humidity_percent": 40.5}


def test_standardize_and_sink_with_statuses_at_the_thresholds_and_csv_export(kafka, processes, client):
    sensors = kafka.name("sensor_data")
    temps = {"warn": 24.01, "edge-high": 24.0, "edge-low": 19.0, "low": 18.99, "normal": 21.5}
    produce_and_wait(
        [Outbound(sensors, sensor(t, sensor_id=name), key=name) for name, t in temps.items()]
        + [Outbound(sensors, sensor(-3.5, sensor_id="=cmd|' /C calc'!A0", ts=1767614400))]
        + [Outbound(sensors, {"sensor_id": "s-9", "temperature_celsius": "hot"})]
        + [Outbound(kafka.name("user_activity"), {
            "event_timestamp": "2026-01-05T12:00:01", "user_id": "user-1", "session_id": "abc",
            "action": "Purchase", "details": {"amount": 12.5, "note": "=HYPERLINK(\"x\")"},
        })]
        + [Outbound(kafka.name("user_activity"), {
            "event_timestamp": "2026-01-05T12:00:02", "user_id": 7, "session_id": "+sess",
            "action": "click", "details": "@SUM(A1)",
        })]
    )
    processes.consumer("standardize")
    sink = processes.consumer("processed_sink")
    wait_until(lambda: SensorReading.objects.count() == 6 and ActivityEvent.objects.count() == 2,
               message="six readings and two activity events stored")

    statuses = dict(SensorReading.objects.values_list("sensor_id", "status"))
    assert statuses["warn"] == "Warning" and statuses["low"] == "Low"
    assert statuses["edge-high"] == "Normal" and statuses["edge-low"] == "Normal" and statuses["normal"] == "Normal"
    bad = QuarantineRecord.objects.get()
    assert bad.consumer == "standardize"
    assert {e["field"] for e in bad.errors} == {"timestamp", "temperature_celsius", "humidity_percent"}

    processed = [json.loads(m.value()) for m in kafka.read("processed_data", expected=8)]
    by_id = {p.get("sensor_id") or p.get("user_id"): p for p in processed}
    assert by_id["warn"]["type"] == "sensor" and by_id["warn"]["status"] == "Warning"
    assert by_id["warn"]["timestamp"] == "2026-01-05T10:00:00Z"  # +02:00 standardized to UTC
    assert by_id["user-1"]["type"] == "activity" and by_id["user-1"]["timestamp"] == "2026-01-05T12:00:01Z"
    assert by_id["user-1"]["action"] == "purchase" and "event_timestamp" not in by_id["user-1"]

    # Replaying processed_data (a new sink group) stores nothing twice.
    again = processes.consumer("processed_sink", CONSUMER_GROUP_PREFIX=kafka.group_prefix + "-again")
    produce_and_wait([Outbound(kafka.name("processed_data"), by_id["warn"])])  # a duplicate publish
    produce_and_wait([Outbound(kafka.name("processed_data"), {"type": "sensor", "timestamp": "x"})])
    wait_until(lambda: consumed(processes, sink) == 10 and consumed(processes, again) == 10,
               message="both sink groups through all ten processed messages")
    assert SensorReading.objects.count() == 6 and ActivityEvent.objects.count() == 2
    rejected = QuarantineRecord.objects.get(consumer="processed_sink")  # once, though seen twice
    assert {e["field"] for e in rejected.errors} >= {"timestamp", "sensor_id"}

    # Exports hold user and session ids: the view permission, not just anyone.
    assert client.get("/api/sensor-readings/export/").status_code == 401
    reader = User.objects.create_user("export-reader")
    reader.user_permissions.add(*Permission.objects.filter(codename__in=["view_sensorreading", "view_activityevent"],
                                                           content_type__app_label="streams"))
    client.force_login(reader)
    response = client.get("/api/sensor-readings/export/")
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="processed_data_sensor.csv"'
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["timestamp", "sensor_id", "temperature_celsius", "humidity_percent", "status"]
    assert len(rows) == 7
    formula = next(r for r in rows if "calc" in r[1])
    assert formula[1].startswith("'=cmd") and formula[2] == "-3.5" and formula[4] == "Low"
    assert formula[0] == "2026-01-05T12:00:00Z"

    response = client.get("/api/activity-events/export/?action=click")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows == [["timestamp", "user_id", "session_id", "action", "details"],
                    ["2026-01-05T12:00:02Z", "7", "'+sess", "click", "'@SUM(A1)"]]

    # The same export from the admin action.
    admin = User.objects.create_superuser("boss", "boss@example.com", "pw-123456789")
    client.force_login(admin)
    ids = list(ActivityEvent.objects.values_list("pk", flat=True))
    response = client.post("/admin/streams/activityevent/",
                           {"action": "export_csv", "_selected_action": ids})
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="processed_data_activity.csv"'
    text = b"".join(response.streaming_content).decode()
    assert '"{""amount"":12.5,""note"":""=HYPERLINK(\\""x\\"")""}"' in text
    assert len(text.strip().splitlines()) == 3
