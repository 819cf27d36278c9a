"""The platform's decoding rules (streams/kafka/decoding.py), as pure logic: the
timestamps every pipeline's events carry."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from streams.kafka.decoding import parse_timestamp

T0 = datetime(2026, 1, 5, 12, 0, 0, tzinfo=UTC)


def test_timestamps_accept_iso_with_and_without_zone_and_epoch_seconds():
    assert parse_timestamp("2026-01-05T12:00:00") == T0
    assert parse_timestamp("2026-01-05T13:00:00+01:00") == T0
    assert parse_timestamp("2026-01-05T12:00:00Z") == T0
    assert parse_timestamp(T0.timestamp()) == T0
    for bad in ("yesterday", 12, True, None, float("nan"), [1]):
        with pytest.raises(ValueError):
            parse_timestamp(bad)
