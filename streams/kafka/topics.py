"""The topic registry: logical names from settings.KAFKA_TOPICS to Kafka topics."""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from .client import client_config


@dataclass(frozen=True)
class TopicSpec:
    logical: str
    name: str
    partitions: int


# Names already looked up: consumers ask per message, and settings are a lazy object.
# Emptied when a test overrides KAFKA_TOPICS (Django's setting_changed signal).
_names: dict[str, str] = {}


def topic_name(logical: str) -> str:
    """The Kafka topic behind a logical name (`"orders_dlq"` -> `"orders-dlq"`)."""
    try:
        return _names[logical]
    except KeyError:
        pass
    try:
        name = _names[logical] = str(settings.KAFKA_TOPICS[logical]["name"])
    except KeyError:
        raise KeyError(f"unknown topic {logical!r}; known: {sorted(settings.KAFKA_TOPICS)}") from None
    return name


@receiver(setting_changed)
def _forget_names(*, setting: str, **_kwargs: object) -> None:
    if setting == "KAFKA_TOPICS":
        _names.clear()


def all_topics() -> list[TopicSpec]:
    return [
        TopicSpec(logical=logical, name=str(spec["name"]), partitions=int(spec["partitions"]))
        for logical, spec in settings.KAFKA_TOPICS.items()
    ]


def admin_client() -> AdminClient:
    return AdminClient(client_config())


def ensure_topics(timeout: float = 30.0) -> tuple[list[str], list[str]]:
    """Create every registered topic that is missing. Returns (created, existing).

    Idempotent: topics that exist are left as they are (their partition count
    is not changed, since that would move keys between partitions).
    """
    admin = admin_client()
    existing = set(admin.list_topics(timeout=timeout).topics)
    wanted = all_topics()
    missing = [
        NewTopic(t.name, num_partitions=t.partitions, replication_factor=settings.KAFKA_REPLICATION_FACTOR)
        for t in wanted
        if t.name not in existing
    ]
    created: list[str] = []
    if missing:
        for name, future in admin.create_topics(missing, request_timeout=timeout).items():
            try:
                future.result()
                created.append(name)
            except KafkaException as exc:
                if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
                    raise
    return created, sorted(t.name for t in wanted if t.name in existing)
