"""Reset offsets from a consumer's page (console/ops/offsets.py), against the real broker and
database: dry run, then Apply, audited; refused while the consumer runs; hidden from and
forbidden to who lacks console.reset_offsets."""

from __future__ import annotations

import html
import re

import pytest
from django.urls import reverse

from console.models import AuditEntry
from streams.kafka import offset_reset
from streams.kafka.models import ConsumerOffset
from streams.kafka.offset_reset import OffsetResetError
from streams.kafka.registry import get_consumer
from tests.conftest import wait_until
from tests.streams.kafka.test_offset_reset import commit, kafka_positions, produce, rows

from .conftest import logged_in


def plan_url(name: str = "telemetry") -> str:
    return reverse("ops-offsets-plan", args=[name])


def apply_url(name: str = "telemetry") -> str:
    return reverse("ops-offsets-apply", args=[name])


def apply_form(page: str) -> dict[str, str]:
    """The hidden fields of the dry run's Apply form, as the browser would send them."""
    form = page.split('id="offset-apply-form"', 1)[1].split("</form>", 1)[0]
    return {name: html.unescape(value) for name, value in re.findall(r'name="(\w+)" value="([^"]*)"', form)
            if name != "csrfmiddlewaretoken"}


@pytest.fixture
def telemetry(kafka, transactional_db):
    """10 metrics applied: Kafka and PostgreSQL at 10."""
    spec = get_consumer("telemetry")
    produce(kafka.name("metrics"), 0, 10)
    commit(spec.group_id(), {(kafka.name("metrics"), 0): 10})
    ConsumerOffset.objects.create(group=spec.group_id(), topic=kafka.name("metrics"), partition=0, next_offset=10)
    return spec


def test_an_operator_resets_the_offsets_after_a_dry_run(kafka, telemetry, operator):
    metrics, group = kafka.name("metrics"), telemetry.group_id()
    client = logged_in(operator)
    page = client.get(reverse("ops-consumer", args=["telemetry"])).content.decode()
    assert 'id="offset-reset-form"' in page and f'value="{metrics}"' in page

    dry = client.post(plan_url(), {"target": "earliest", "topic": metrics})
    assert dry.status_code == 200
    text = dry.content.decode()
    assert 'id="offset-plan"' in text and 'id="offset-apply"' in text
    assert re.search(r'id="offset-replayed">10<', text) and re.search(r'id="offset-skipped">0<', text)
    assert kafka_positions(group, metrics, 1) == [10] and rows(metrics) == {0: 10}  # a dry run moves nothing
    assert not AuditEntry.objects.exists()

    fields = apply_form(text)
    assert fields["target"] == "earliest" and fields["topic"] == metrics and fields["expected"]
    done = client.post(apply_url(), fields)
    assert done.status_code == 302 and done["Location"] == reverse("ops-consumer", args=["telemetry"])
    assert kafka_positions(group, metrics, 1) == [0] and rows(metrics) == {0: 0}
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.target, entry.outcome, entry.actor_name) == \
        ("offsets_reset", "consumer:telemetry", "succeeded", operator.username)
    assert entry.detail["group"] == group and entry.detail["replayed"] == 10
    [moved] = entry.detail["partitions"]
    assert (moved["topic"], moved["committed"], moved["stored"], moved["from"], moved["new"]) == \
        (metrics, 10, 10, 10, 0)
    after = client.get(done["Location"]).content.decode()
    assert f"Offsets of {group} reset to earliest on {metrics}" in after
    assert 'id="offset-resets"' in after  # the latest resets, on the consumer's page

    # One past an offset: a poison message at 3 stepped over.
    dry = client.post(plan_url(), {"target": "after_offset", "topic": metrics, "partition": "0", "offset": "3"})
    client.post(apply_url(), apply_form(dry.content.decode()))
    assert kafka_positions(group, metrics, 1) == [4] and rows(metrics) == {0: 4}
    # A timestamp (ms since the epoch): message 6's.
    dry = client.post(plan_url(), {"target": "timestamp", "timestamp": str(1_700_000_006_000)})
    assert 'id="offset-apply"' in dry.content.decode()
    client.post(apply_url(), apply_form(dry.content.decode()))
    assert kafka_positions(group, metrics, 1) == [6]
    # Latest.
    dry = client.post(plan_url(), {"target": "latest"})
    client.post(apply_url(), apply_form(dry.content.decode()))
    assert kafka_positions(group, metrics, 1) == [10] and rows(metrics) == {0: 10}
    assert list(AuditEntry.objects.values_list("outcome", flat=True)) == ["succeeded"] * 4


def test_bad_requests_are_shown_and_an_apply_without_its_dry_run_is_refused(kafka, telemetry, operator):
    metrics = kafka.name("metrics")
    client = logged_in(operator)
    for data, message in [
        ({"target": "after_offset", "topic": metrics}, "Give the offset of the message to step over."),
        ({"target": "timestamp", "timestamp": "yesterday"}, "is not a time"),
        ({"target": "after_offset", "topic": metrics, "partition": "0", "offset": "10"},
         f"offset 10 is not a message of {metrics}[0]: it keeps offsets 0 to 9"),
        ({"target": "earliest", "topic": metrics, "partition": "3"}, f"{metrics} has no partition 3"),
        ({"target": "earliest", "topic": "another-topic"}, "Select a valid choice"),
    ]:
        page = client.post(plan_url(), data)
        assert page.status_code == 200
        text = html.unescape(page.content.decode())
        assert message in text, message
        assert 'id="offset-apply"' not in text
    assert not AuditEntry.objects.exists()  # dry runs are not audited

    done = client.post(apply_url(), {"target": "earliest", "topic": metrics})
    assert done.status_code == 302
    entry = AuditEntry.objects.get()
    assert entry.outcome == "refused" and "run the dry run first" in entry.detail["message"]
    assert kafka_positions(telemetry.group_id(), metrics, 1) == [10]
    assert client.get(plan_url()).status_code == 405 and client.get(apply_url()).status_code == 405
    assert client.post(plan_url("no-such-consumer"), {"target": "earliest"}).status_code == 404


def test_a_viewer_does_not_see_the_form_and_may_not_post(kafka, telemetry, viewer):
    client = logged_in(viewer)
    page = client.get(reverse("ops-consumer", args=["telemetry"]))
    assert page.status_code == 200
    assert 'id="offset-reset-form"' not in page.content.decode() and "Reset offsets" not in page.content.decode()
    assert client.post(plan_url(), {"target": "earliest"}).status_code == 403
    assert client.post(apply_url(), {"target": "earliest", "expected": "[]"}).status_code == 403
    assert kafka_positions(telemetry.group_id(), kafka.name("metrics"), 1) == [10]
    assert not AuditEntry.objects.exists()


def test_while_the_consumer_runs_the_reset_is_refused_and_audited(kafka, processes, operator):
    spec = get_consumer("telemetry")
    metrics, group = kafka.name("metrics"), spec.group_id()
    produce(metrics, 0, 5)
    consumer = processes.consumer("telemetry", "--batch-time", "50")
    wait_until(lambda: rows(metrics) == {0: 5}, message="the 5 applied")
    client = logged_in(operator)
    wait_until(lambda: b"1 member in the group" in client.post(plan_url(), {"target": "earliest"}).content,
               message="the member seen in its group")
    text = client.post(plan_url(), {"target": "earliest"}).content.decode()
    assert "Stop the consumer first: 1 member in the group" in text and 'id="offset-apply"' not in text

    expected = f'[["{metrics}", 0, 5, 5]]'
    done = client.post(apply_url(), {"target": "earliest", "topic": metrics, "expected": expected})
    assert done.status_code == 302
    assert "stop the consumer first: 1 member" in client.get(done["Location"]).content.decode()
    entry = AuditEntry.objects.get()
    assert entry.outcome == "refused" and entry.detail["members"] == 1
    assert rows(metrics) == {0: 5}
    assert processes.stop(consumer) == 0


def test_a_reset_kafka_refuses_is_audited_as_failed_and_postgresql_is_left_as_it_was(kafka, telemetry, operator,
                                                                                      monkeypatch):
    metrics = kafka.name("metrics")
    client = logged_in(operator)
    fields = apply_form(client.post(plan_url(), {"target": "earliest", "topic": metrics}).content.decode())

    def refuse(admin, group, moves):
        raise OffsetResetError("Kafka refused the new offsets: a test says so")

    monkeypatch.setattr(offset_reset, "_commit_to_kafka", refuse)
    done = client.post(apply_url(), fields)
    assert "Kafka refused the new offsets" in client.get(done["Location"]).content.decode()
    entry = AuditEntry.objects.get()
    assert entry.outcome == "failed" and entry.detail["reset"]["target"] == "earliest"
    assert rows(metrics) == {0: 10}  # the rows' update rolled back with the refusal
    assert kafka_positions(telemetry.group_id(), metrics, 1) == [10]
