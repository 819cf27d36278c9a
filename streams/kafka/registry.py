"""The consumer registry: consumer name -> topics, group, steps, dead-letter target.

One way to register: each app lists the consumers it runs in its `consumers.py`
module, one `register(ConsumerSpec(...))` each, naming the functions of the
module that holds the steps (streams/consumers.py for the stream pipelines,
ingest/consumers.py for ingest). The registry imports every installed app's
`consumers` module (`discover()`, Django's autodiscover_modules, as the admin
finds `admin.py`); `manage.py run_consumer NAME` builds any of them (see runtime.py).

A consumer is a chain of small steps:

* `decode(envelope)` turns raw bytes into a validated value, or raises
  `MessageRejected` with a reason and structured errors. It is pure: no I/O.
* `handle_batch(envelopes)` applies a whole batch of decoded messages inside
  one database transaction and returns what to publish afterwards and which
  messages it rejected (for checks that need the database, such as an
  unknown product).

Rejected messages go to the dead-letter path (a record through the sink the
quarantine app registers, `set_dead_letter_sink`, and the consumer's
dead-letter topic); they never block the partition.

Each consumer names the `Pipeline` it belongs to, and a pipeline with no consumer
(its work is Celery tasks) is declared with `register_pipeline()`: the operations
pages list `pipelines()` with their consumers, so a new consumer shows there once
it is registered.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.utils.module_loading import autodiscover_modules

from .producer import Headers, Outbound


class MessageRejected(Exception):
    """A message that can never be processed; it goes to the dead-letter path."""

    def __init__(self, reason: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.errors = errors or []


class Envelope:
    """One consumed message with its origin and, once decoded, its value.

    A plain class with slots, not a dataclass: the runtime makes one per message
    on the hot path. The timestamp is kept as the broker's milliseconds and
    turned into a datetime only when asked for (most consumers never do)."""

    __slots__ = ("topic", "partition", "offset", "key", "headers", "raw", "value", "rejection", "_timestamp",
                 "_millis")

    def __init__(self, topic: str, partition: int, offset: int, key: bytes | None, headers: Headers, raw: bytes,
                 timestamp: datetime | None = None, value: Any = None, rejection: MessageRejected | None = None,
                 *, millis: int | None = None) -> None:
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.key = key
        self.headers = headers
        self.raw = raw
        self.value = value
        self.rejection = rejection
        self._timestamp = timestamp
        self._millis = millis  # the broker's timestamp (ms), when `timestamp` is not given

    @property
    def timestamp(self) -> datetime | None:
        if self._timestamp is None and self._millis is not None:
            self._timestamp = datetime.fromtimestamp(self._millis / 1000, tz=UTC)
        return self._timestamp

    @timestamp.setter
    def timestamp(self, moment: datetime | None) -> None:
        self._timestamp, self._millis = moment, None

    def header(self, name: str) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def __repr__(self) -> str:
        return f"Envelope({self.topic}[{self.partition}]@{self.offset}, rejected={self.rejection is not None})"


@dataclass
class Rejection:
    envelope: Envelope
    reason: str
    errors: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class BatchOutcome:
    """What a batch handler asks for once its transaction has committed."""

    outbound: list[Outbound] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    applied: int = 0
    # Steps that must follow the broker's acknowledgement of `outbound`, each in a
    # transaction of its own (a watermark that must never get ahead of what downstream
    # can read). One that fails is logged and let go: it may only lag.
    after_publish: list[Callable[[], None]] = field(default_factory=list)


@dataclass(frozen=True)
class PartitionProgress:
    """What one member knows of its partitions when its tick runs: which assigned ones are
    applied up to their end (`caught_up`), which are not (`behind`: unread messages, or a
    batch not applied yet), and every partition of the input topics (`partitions`). A
    partition in none of the first two is another member's, or nobody's right now."""

    caught_up: tuple[tuple[str, int], ...] = ()
    behind: tuple[tuple[str, int], ...] = ()
    partitions: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class Pipeline:
    """A pipeline as the operations pages show it: `key` (stable, for links and tests), its
    `label`, the admin changelist of what it stores (a URL name) and its place among the
    others (`order`, lowest first)."""

    key: str
    label: str
    admin_url: str
    order: int = 0


@dataclass(frozen=True)
class ConsumerSpec:
    name: str
    topics: tuple[str, ...]  # logical topic names (settings.KAFKA_TOPICS)
    decode: Callable[[Envelope], Any]
    handle_batch: Callable[[Sequence[Envelope]], BatchOutcome]
    dead_letter_topic: str = "dead_letters"  # logical topic name
    description: str = ""
    group: str | None = None  # defaults to consumer_group(name)
    # Keep the consumed positions in PostgreSQL, in each batch's transaction (offsets.py): a
    # batch is applied once even if the process dies between the database commit and the
    # Kafka commit. Only for consumers whose outbound, if any, is state republished later:
    # a batch skipped on replay does not publish again.
    offsets_in_db: bool = False
    # Work due by the clock (closing windows on a quiet stream): called by the runtime inside
    # a transaction at most every CONSUMER_TICK_SECONDS, also when no message arrives, with
    # the member's PartitionProgress; its outcome is published like a batch's (outbound
    # after the commit, then the after_publish steps).
    tick: Callable[[PartitionProgress], BatchOutcome] | None = None
    # Its state in PostgreSQL is shared by every group (windows closed by the group's own
    # watermark): while a process of another group is live on the database, this one
    # applies nothing and holds its batch (heartbeat.rival_group says why).
    one_group_per_database: bool = False
    # The pipeline the operations pages show it under; None: under "Other consumers".
    pipeline: Pipeline | None = None
    # What it does besides reading `topics`, for the pipeline map (console/ops/topology.py):
    # the models its batches and ticks write ("app_label.Model"), the topics its outbound goes
    # to (logical names; dead letters go to dead_letter_topic) and the Celery tasks it queues
    # (by name). tests/console/test_map_declared.py runs it on real messages and fails on
    # anything it did that is not declared here.
    writes: tuple[str, ...] = ()
    produces: tuple[str, ...] = ()
    queues: tuple[str, ...] = ()

    def group_id(self) -> str:
        return self.group or consumer_group(self.name)


@dataclass(frozen=True)
class Source:
    """What puts data into the pipelines other than a consumer, declared next to its code
    with `register_source()`, for the pipeline map: an `endpoint`, the inbox `watcher`, an
    `upload`, a `generator` (demo, load), a Celery `task` (key: its task name) or an
    `operator` action. Like a ConsumerSpec it names the topics it `produces` (logical),
    the models it `writes` ("app_label.Model") and the tasks it `queues`; `pipeline` is a
    Pipeline key and `link` the path of its page, if it has one."""

    key: str
    kind: str
    label: str
    produces: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    queues: tuple[str, ...] = ()
    pipeline: str = ""
    link: str = ""


_sources: dict[str, Source] = {}


def _declare(table: dict, key: str, item, kind: str):
    """Add `item` under `key`; declaring the same thing again is harmless, declaring
    something else under a known key is a mistake worth stopping the start for."""
    known = table.get(key)
    if known is not None and known != item:
        raise ValueError(f"{kind} {key!r} is declared twice, differently: {known} and {item}")
    table[key] = item
    return item


def register_source(source: Source) -> Source:
    return _declare(_sources, source.key, source, "source")


def sources() -> dict[str, Source]:
    """Every declared source, by key (those of the modules imported so far: the pipeline
    map imports the modules that declare them first, console/ops/topology.py)."""
    return dict(sorted(_sources.items()))


def consumer_group(name: str) -> str:
    """The Kafka consumer group of the consumer `name` when its spec names none:
    "<CONSUMER_GROUP_PREFIX>-<name>". The one place this rule is written: a pipeline
    that keeps state per group (the orders' watermark rows) asks here."""
    from django.conf import settings

    return f"{settings.CONSUMER_GROUP_PREFIX}-{name}"


_registry: dict[str, ConsumerSpec] = {}
_pipelines: dict[str, Pipeline] = {}

# Where dead letters are recorded (a quarantine record each). The platform imports
# no app: the quarantine app registers its recorder here when Django starts.
DeadLetterSink = Callable[..., int]  # (*, consumer: str, rejections: Sequence[Rejection]) -> recorded
_dead_letter_sink: DeadLetterSink | None = None


def set_dead_letter_sink(sink: DeadLetterSink) -> None:
    global _dead_letter_sink
    _dead_letter_sink = sink


def record_dead_letters(*, consumer: str, rejections: Sequence[Rejection]) -> int:
    """Record rejected messages through the registered sink, inside the batch's transaction."""
    if _dead_letter_sink is None:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured("no dead-letter sink is registered: is the quarantine app installed?")
    return _dead_letter_sink(consumer=consumer, rejections=rejections)


def discover() -> None:
    """Import every installed app's `consumers` module, where the app registers its consumers
    (idempotent: Django imports each module once)."""
    autodiscover_modules("consumers")


def register(spec: ConsumerSpec) -> ConsumerSpec:
    if spec.name in _registry and _registry[spec.name] is not spec:
        raise ValueError(f"consumer {spec.name!r} is registered twice")
    _registry[spec.name] = spec
    if spec.pipeline is not None:
        register_pipeline(spec.pipeline)
    return spec


def register_pipeline(pipeline: Pipeline) -> Pipeline:
    """Declare a pipeline; its consumers declare it too, so this is for one without any."""
    return _declare(_pipelines, pipeline.key, pipeline, "pipeline")


def pipelines() -> dict[Pipeline, tuple[str, ...]]:
    """Every declared pipeline by its `order`, with the names of its consumers in the order
    they were registered (the order its data flows through them)."""
    discover()
    return {pipeline: tuple(name for name, spec in _registry.items() if spec.pipeline == pipeline)
            for pipeline in sorted(_pipelines.values(), key=lambda p: p.order)}


def consumers() -> dict[str, ConsumerSpec]:
    """Every registered consumer, discovered from each app's consumers.py."""
    discover()
    return dict(sorted(_registry.items()))


def get_consumer(name: str) -> ConsumerSpec:
    known = consumers()
    if name not in known:
        raise KeyError(f"unknown consumer {name!r}; registered: {', '.join(known) or 'none'}")
    return known[name]
