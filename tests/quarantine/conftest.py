"""Fixtures for the quarantine console: users by role and real records."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission, User

from quarantine.models import QuarantineRecord
from quarantine.services import quarantine_dead_letters
from streams.kafka.registry import Envelope, Rejection

PASSWORD = "quarantine-pass-123"
BAD_METRIC = {"id": "ten", "val": 1.5, "time": 1624378100}


@pytest.fixture
def operator(db) -> User:
    """A member of the `operators` group that the migration creates."""
    user = User.objects.create_user("olivia", password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name="operators"))
    return user


@pytest.fixture
def viewer(db) -> User:
    """Staff with the view permission only: can read, cannot act."""
    user = User.objects.create_user("victor", password=PASSWORD, is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(
        content_type__app_label="quarantine", codename__startswith="view_"))
    return user


_offsets = iter(range(10_000, 1_000_000))


def dead_letter(topic: str, value: Any, *, errors: list[dict] | None = None, reason: str | None = None,
                replay_count: int | None = None, consumer: str = "telemetry", key: bytes | None = b"k1") -> QuarantineRecord:
    """Quarantine a message through the same service the consumer runtime uses."""
    raw = value if isinstance(value, bytes) else json.dumps(value, separators=(",", ":")).encode()
    headers = [("trace-id", b"abc")]
    if replay_count is not None:
        headers.append(("x-replay-count", str(replay_count).encode()))
    offset = next(_offsets)
    envelope = Envelope(topic=topic, partition=0, offset=offset, key=key, headers=headers, raw=raw)
    if errors is None:
        errors = [{"field": "id", "rule": "integer", "message": "must be an integer", "value": "'ten'"}]
    quarantine_dead_letters(consumer=consumer, rejections=[
        Rejection(envelope=envelope, reason=reason or "invalid fields: id", errors=errors)])
    return QuarantineRecord.objects.get(consumer=consumer, topic=topic, partition=0, offset=offset)
