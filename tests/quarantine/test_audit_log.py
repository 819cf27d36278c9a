"""Quarantine's actions are written to the console's one audit log: read there
beside the console's own actions, on the record's page as its trail, on the
quarantine audit page (with its own permission) and in the API; and the
migration that moved the old table's rows into the log keeps every row."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from console.audit import ActionRefused
from console.models import AuditEntry
from console.ops.kafka_actions import message_produce
from quarantine import services
from quarantine.models import QuarantineAuditEntry, QuarantineRecord

from .conftest import BAD_METRIC, dead_letter

BEFORE = [("quarantine", "0003_operators_group_and_cleanup_schedule")]
AFTER = [("quarantine", "0004_audit_entries_in_the_console_log")]


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_quarantine_and_console_actions_are_read_in_one_log(operator, viewer, settings):
    record = dead_letter("metrics", BAD_METRIC)
    services.quarantine_discard(record=record, by=operator, reason="sensor replaced")
    settings.CONSOLE_PRODUCE_MAX_BYTES = 4
    with pytest.raises(ActionRefused):
        message_produce(by=operator, topic="metrics", value=b"too long")

    quarantine_entry, produce_entry = AuditEntry.objects.order_by("id")
    assert (quarantine_entry.action, quarantine_entry.target, quarantine_entry.outcome, quarantine_entry.reason) \
        == ("discard", f"quarantine-record:{record.pk}", "succeeded", "sensor replaced")
    assert quarantine_entry.subject == record and list(record.audit_entries.all()) == [quarantine_entry]
    assert (produce_entry.action, produce_entry.outcome, produce_entry.subject) == ("message_produce", "refused", None)

    log = logged_in(operator).get(reverse("admin:console_auditentry_changelist")).content.decode()
    assert f"quarantine-record:{record.pk}" in log and "message_produce" in log

    # The quarantine page lists the log's quarantine part, for whoever may view quarantine's entries.
    page = logged_in(viewer).get(reverse("admin:quarantine_quarantineauditentry_changelist"))
    assert page.status_code == 200 and list(page.context["cl"].result_list) == [quarantine_entry]
    assert logged_in(viewer).get(reverse("admin:console_auditentry_changelist")).status_code == 403
    found = logged_in(viewer).get(reverse("admin:quarantine_quarantineauditentry_changelist"), {"q": "invalid fields"})
    assert list(found.context["cl"].result_list) == [quarantine_entry]  # by the record's reason
    shown = logged_in(viewer).get(reverse("admin:quarantine_quarantineauditentry_change", args=[quarantine_entry.pk]))
    assert shown.status_code == 200 and "sensor replaced" in shown.content.decode()
    assert logged_in(viewer).get(reverse("admin:quarantine_quarantineauditentry_change",
                                         args=[produce_entry.pk])).status_code == 302  # not a quarantine entry

    trail = logged_in(viewer).get(reverse("admin:quarantine_quarantinerecord_change", args=[record.pk])).content.decode()
    assert 'id="audit_entries-group"' in trail and "sensor replaced" in trail and "Discard" in trail

    api = APIClient()
    api.force_authenticate(viewer)
    [entry] = api.get(reverse("quarantine-record-detail", args=[record.pk])).json()["audit_entries"]
    assert entry == {"id": quarantine_entry.pk, "at": entry["at"], "actor_name": "olivia", "action": "discard",
                     "outcome": "succeeded", "reason": "sensor replaced",
                     "details": {"retention_days": settings.QUARANTINE_RETENTION_DAYS}}


@pytest.mark.django_db(transaction=True)
def test_the_migration_moves_the_old_entries_into_the_log_and_back(operator):
    record = dead_letter("metrics", BAD_METRIC)
    AuditEntry.objects.create(actor=operator, actor_name="olivia", action="task_retry", target="task:1",
                              outcome="succeeded")
    services.quarantine_discard(record=record, by=operator, reason="noise")
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    try:
        old = executor.loader.project_state(BEFORE).apps.get_model("quarantine", "QuarantineAuditEntry")
        [back] = old.objects.all()  # the way back: the log's entry about the record, in the old table
        assert (back.record_id, back.action, back.reason, back.outcome) == (record.pk, "discard", "noise", "succeeded")
        assert list(AuditEntry.objects.values_list("action", flat=True)) == ["task_retry"]
        back.delete()
        old.objects.create(record_id=record.pk, actor_id=operator.pk, actor_name="olivia", action="release",
                           reason="first try", outcome="failed", details={"error": "no broker"})
        old.objects.create(record_id=record.pk, actor_id=None, actor_name="system", action="purge",
                           reason="retention period ended", outcome="succeeded", details={"file_removed": None})
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(AFTER)
        # Then every later migration too: the tests after this one need the whole schema.
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())

    moved = QuarantineAuditEntry.objects.order_by("id")
    assert [(e.action, e.actor_id, e.actor_name, e.reason, e.outcome, e.detail, e.target, e.subject) for e in moved] \
        == [("release", operator.pk, "olivia", "first try", "failed", {"error": "no broker"},
             f"quarantine-record:{record.pk}", record),
            ("purge", None, "system", "retention period ended", "succeeded", {"file_removed": None},
             f"quarantine-record:{record.pk}", record)]
    assert AuditEntry.objects.filter(action="task_retry").count() == 1
    assert list(QuarantineRecord.objects.get(pk=record.pk).audit_entries.order_by("id")) == list(moved)
