"""The pipeline map is derived from what the code declares (ConsumerSpec.writes/produces/
queues, streams.kafka.registry.Source): these tests fail when the code does something it
did not declare.

* Every registered consumer runs on real messages, chained as the pipelines chain them
  (the demo generators' events into the first consumers, each consumer's outbound into
  the next), through the platform's own steps (decode, `apply_isolating` in a
  transaction, the dead-letter records, the clock tick and its after-publish steps)
  against the real PostgreSQL. The tables it wrote are read from PostgreSQL's counters
  of the test's transaction (pg_stat_xact_user_tables), the topics from its outbound and
  dead letters, the Celery tasks from what it queued: each must be declared.
* The Celery tasks that move data run (`apply`, their own code) on real files and a real
  report, and what they write and queue must be in their Source.
* Every module outside the platform that publishes or queues a task declares a source
  (register_source) or is a consumer's step module or an operator action listed below.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.apps import apps
from django.db import connection, transaction

from console.demo.traffic import sensor_file, telemetry_events
from console.ops.topology import discover_sources
from streams.kafka.apply import apply_isolating, dead_letter_message
from streams.kafka.producer import Outbound
from streams.kafka.registry import (
    ConsumerSpec,
    Envelope,
    MessageRejected,
    PartitionProgress,
    Rejection,
    consumers,
    record_dead_letters,
    sources,
)
from streams.kafka.topics import topic_name
from tests.conftest import ROOT

# Tables every consumer may touch without declaring them: its positions (offsets_in_db) and
# its dead-letter records (the dead-letter path, drawn from dead_letter_topic).
PLATFORM_TABLES = {"streams.ConsumerOffset", "quarantine.QuarantineRecord"}


def _table_models() -> dict[str, str]:
    return {model._meta.db_table: model._meta.label for model in apps.get_models(include_auto_created=True)}


def _writes_so_far() -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_xact_user_tables "
                       "WHERE schemaname NOT LIKE 'pg_temp%'")  # not a batch's staging tables
        return dict(cursor.fetchall())


def _envelopes(messages: Sequence[Outbound]) -> list[Envelope]:
    now_ms = int(time.time() * 1000)
    return [Envelope(m.topic, 0, offset, m.key.encode() if isinstance(m.key, str) else m.key, [],
                     m.encoded_value(), millis=now_ms) for offset, m in enumerate(messages)]


class Observed:
    def __init__(self) -> None:
        self.tables: set[str] = set()
        self.topics: set[str] = set()
        self.tasks: set[str] = set()


def _run(spec: ConsumerSpec, messages: list[Outbound], observed: Observed, queued: list[str]) -> list[Outbound]:
    """One batch of `spec` on `messages` and one tick, as apply_batch/apply_tick run them
    (without their publish: the outbound is what they would publish). Returns the outbound."""
    by_name = {topic_name(logical): logical for logical in _logical_topics()}
    tables = _table_models()
    before, queued_before, callbacks = _writes_so_far(), len(queued), len(connection.run_on_commit)
    envelopes = _envelopes(messages)
    for e in envelopes:
        try:
            e.value = spec.decode(e)
        except MessageRejected as exc:
            e.rejection = exc
    valid = [e for e in envelopes if e.rejection is None]
    with transaction.atomic():
        outcome, refused = apply_isolating(spec, valid) if valid else (None, [])
        rejected = [Rejection(e, e.rejection.reason, e.rejection.errors) for e in envelopes if e.rejection]
        rejected += (outcome.rejected if outcome else []) + refused
        if rejected:
            record_dead_letters(consumer=spec.name, rejections=rejected)
    outbound = list(outcome.outbound) if outcome else []
    steps = list(outcome.after_publish) if outcome else []
    if spec.tick is not None:
        partitions = tuple((topic_name(t), p) for t in spec.topics for p in range(3))
        with transaction.atomic():
            ticked = spec.tick(PartitionProgress(caught_up=partitions, partitions=partitions))
        outbound += ticked.outbound
        steps += ticked.after_publish
    for step in steps:
        with transaction.atomic():
            step()
    for _sids, callback, _robust in connection.run_on_commit[callbacks:]:
        callback()  # what runs once the batch commits (the test's transaction never does): queued tasks
    after = _writes_so_far()
    observed.tables |= {tables.get(t, t) for t, n in after.items() if n > before.get(t, 0)}
    observed.topics |= {by_name.get(m.topic, m.topic) for m in outbound}
    observed.topics |= {by_name.get(d.topic, d.topic) for d in (dead_letter_message(spec, r) for r in rejected)}
    observed.tasks |= set(queued[queued_before:])
    return outbound


def _logical_topics() -> list[str]:
    from django.conf import settings

    return list(settings.KAFKA_TOPICS)


def _first_messages(inbox: Path) -> list[Outbound]:
    """Every pipeline's input, as the demo and the seeds' producers send it, and a message
    no consumer accepts on every input topic (the dead-letter paths)."""
    from ingest.services.announcing import file_event
    from streams.activity.demo import activity_events, sensor_events
    from streams.orders.demo import order_events

    rng = random.Random(24)
    now = datetime.now(tz=UTC)
    (inbox / "map-test.csv").write_text(sensor_file(int(now.timestamp()), rng, rows=20))
    orders = order_events(20, now=now - timedelta(minutes=30), rng=rng) + order_events(20, now=now, rng=rng)
    return [
        *telemetry_events(int(now.timestamp()), rng),
        *(Outbound(topic_name("orders"), o, key=str(o["product_id"])) for o in orders),
        *(Outbound(topic_name("sensor_data"), e) for e in sensor_events(5, now=now, rng=rng)),
        *(Outbound(topic_name("user_activity"), e) for e in activity_events(5, now=now, rng=rng)),
        Outbound(topic_name("product_registrations"), {
            "productId": "prod-map", "productName": "Map", "productDescription": "on the map", "price": 9.5,
            "currency": "EUR", "stockQuantity": 3, "category": "Electronics"}),
        file_event(file_path="map-test.csv", file_name="map-test.csv"),
        *(Outbound(topic_name(t), b"not json") for spec in consumers().values() for t in spec.topics),
    ]


@pytest.mark.django_db
def test_each_consumer_writes_and_produces_only_what_it_declares(settings, tmp_path, monkeypatch):
    from celery import Celery

    from streams.orders.demo import catalog_seed_demo

    settings.INGEST_INBOX_DIR = str(tmp_path)
    queued: list[str] = []
    monkeypatch.setattr(Celery, "send_task", lambda self, name, *args, **kwargs: queued.append(name))
    catalog_seed_demo()
    registered = consumers()
    observed = {name: Observed() for name in registered}
    pending = _first_messages(tmp_path)
    for _round in range(len(registered)):
        produced: list[Outbound] = []
        for name, spec in registered.items():
            names = {topic_name(t) for t in spec.topics}
            mine = [m for m in pending if m.topic in names]
            if mine:
                produced += _run(spec, mine, observed[name], queued)
        pending = [m for m in produced if not m.topic.endswith(("dead-letters", "orders-dlq"))]
        if not pending:
            break
    problems = []
    for name, spec in registered.items():
        seen = observed[name]
        if not seen.tables:
            problems.append(f"{name} ran on no message: the test feeds it nothing")
        if spec.dead_letter_topic not in seen.topics:
            problems.append(f"{name}: its dead-letter path was not exercised")
        for what, done, declared in (("wrote", seen.tables, set(spec.writes) | PLATFORM_TABLES),
                                     ("produced to", seen.topics, set(spec.produces) | {spec.dead_letter_topic}),
                                     ("queued", seen.tasks, set(spec.queues))):
            if done - declared:
                problems.append(f"{name} {what} {sorted(done - declared)} without declaring it")
    assert not problems, "\n".join(problems)


def _task_run(name: str, args: list, queued: list[str]) -> tuple[set[str], set[str]]:
    """Run the Celery task `name` here (`apply`: its real code, no broker) with what runs once
    it commits; the models it wrote and the tasks it queued."""
    from celery import current_app
    from django.test import TestCase

    tables, before, queued_before = _table_models(), _writes_so_far(), len(queued)
    with TestCase.captureOnCommitCallbacks(execute=True):
        current_app.tasks[name].apply(args=args)
    after = _writes_so_far()
    return {tables.get(t, t) for t, n in after.items() if n > before.get(t, 0)}, set(queued[queued_before:])


@pytest.mark.django_db
def test_each_task_writes_and_queues_only_what_it_declares(settings, tmp_path, monkeypatch):
    """The tasks that move data (a good file and a broken one through process_file, a report
    asked for and built) against their Source declarations."""
    from celery import Celery

    from ingest.services import file_register
    from streams.report.services import report_request

    settings.INGEST_INBOX_DIR, settings.INGEST_QUARANTINE_DIR = str(tmp_path / "in"), str(tmp_path / "q")
    (tmp_path / "in").mkdir()
    rng = random.Random(24)
    (tmp_path / "in" / "good.csv").write_text(sensor_file(int(time.time()), rng, rows=30))
    (tmp_path / "in" / "broken.csv").write_text("not,a,sensor,file\n1,2\n")
    queued: list[str] = []
    monkeypatch.setattr(Celery, "send_task", lambda self, name, *args, **kwargs: queued.append(name))
    discover_sources()
    declared = sources()
    runs = [("ingest.process_file", [file_register(file_path=name, file_name=name).id])
            for name in ("good.csv", "broken.csv")]
    runs += [("ingest.refresh_overall_aggregates", []), ("streams.report_scheduled", []),
             ("streams.report_build", [report_request(trigger="api").pk])]
    problems = []
    for name, args in runs:
        written, sent = _task_run(name, args, queued)
        source = declared[name]
        if written - set(source.writes):
            problems.append(f"{name} wrote {sorted(written - set(source.writes))} without declaring it")
        if sent - set(source.queues):
            problems.append(f"{name} queued {sorted(sent - set(source.queues))} without declaring it")
    assert not problems, "\n".join(problems)


def test_every_declaration_names_known_topics_models_and_pipelines():
    discover_sources()
    topics = set(_logical_topics())
    models = {model._meta.label for model in apps.get_models()}
    declared = [(spec.name, spec.topics + spec.produces + (spec.dead_letter_topic,), spec.writes)
                for spec in consumers().values()]
    declared += [(source.key, source.produces, source.writes) for source in sources().values()]
    for name, named_topics, written in declared:
        assert set(named_topics) <= topics, f"{name}: unknown topics {set(named_topics) - topics}"
        assert set(written) <= models, f"{name}: unknown models {set(written) - models}"


# Modules that publish or queue tasks without being a source of their own, and why.
NOT_SOURCES = {
    # operator actions, for any topic or task: the message browser's produce and re-drive,
    # Celery's retry, quarantine's re-drive and retry, the release of late orders
    "console/ops/kafka_actions.py": "operator", "console/ops/celery_ops.py": "operator",
    "quarantine/services/redrive.py": "operator", "streams/orders/services/late.py": "operator",
    # steps of what declares them: the files consumer (queues=), process_file (queues=), the generators
    "ingest/services/registration.py": "files consumer", "ingest/services/aggregation.py": "process_file",
    "streams/management/commands/_loadgen.py": "generate_orders, generate_readings",
}
PUBLISHING = re.compile(r"\b(publish_and_wait|publish_and_wait_async|produce_and_wait|send_task)\(")


def test_every_module_that_publishes_or_queues_declares_a_source():
    """A produce or send_task call outside the platform sits in a module that declares a
    source (register_source), or in a consumer's step module (its spec declares it)."""
    step_modules = {Path(spec.handle_batch.__code__.co_filename).resolve() for spec in consumers().values()}
    missing = []
    for package in ("console", "ingest", "quarantine", "streams"):
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel.startswith("streams/kafka/") or rel in NOT_SOURCES or path.resolve() in step_modules:
                continue
            text = path.read_text()
            if PUBLISHING.search(text) and "register_source(" not in text:
                missing.append(rel)
    assert not missing, f"these modules publish or queue tasks and declare no source: {missing}"
