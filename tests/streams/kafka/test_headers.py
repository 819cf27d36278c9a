"""The bookkeeping headers of dead letters and replays (streams/kafka/headers.py).
Pure logic: no service."""

from __future__ import annotations

from streams.kafka.headers import (
    DLQ_CONSUMER,
    DLQ_ORIGINAL_OFFSET,
    DLQ_ORIGINAL_PARTITION,
    DLQ_ORIGINAL_TOPIC,
    DLQ_REASON,
    QUARANTINE_RECORD,
    REPLAY_COUNT,
    dead_letter_headers,
    redrive_headers,
    replay_count_of,
)


def test_a_dead_letter_says_where_it_was_read_and_why_replacing_an_earlier_dead_letters_headers():
    original = [("trace", b"abc"), (DLQ_REASON, b"an earlier rejection"), (REPLAY_COUNT, b"1")]
    headers = dead_letter_headers(original, reason="invalid fields: val", consumer="telemetry", topic="metrics",
                                  partition=2, offset=41)
    assert headers == [
        ("trace", b"abc"), (REPLAY_COUNT, b"1"), (DLQ_REASON, b"invalid fields: val"), (DLQ_CONSUMER, b"telemetry"),
        (DLQ_ORIGINAL_TOPIC, b"metrics"), (DLQ_ORIGINAL_PARTITION, b"2"), (DLQ_ORIGINAL_OFFSET, b"41"),
    ]


def test_a_dead_letters_reason_is_cut_to_a_thousand_bytes():
    headers = dict(dead_letter_headers([], reason="\u00e9" * 800, consumer="c", topic="t", partition=0, offset=0))
    assert len(headers[DLQ_REASON]) == 1000


def test_a_redriven_message_keeps_its_own_headers_and_carries_the_next_replay_count():
    dead = dead_letter_headers([("source", b"sensor"), (REPLAY_COUNT, b"1"), (QUARANTINE_RECORD, b"7")],
                               reason="r", consumer="c", topic="t", partition=0, offset=3)
    assert redrive_headers(dead, replays=2) == [("source", b"sensor"), (REPLAY_COUNT, b"2")]
    assert redrive_headers(dead, replays=2, record=9) == [
        ("source", b"sensor"), (REPLAY_COUNT, b"2"), (QUARANTINE_RECORD, b"9")]


def test_a_replay_count_that_is_absent_or_unreadable_is_zero():
    assert [replay_count_of(v) for v in (b"3", "2", 4, None, b"", b"many", -2)] == [3, 2, 4, 0, 0, 0, 0]
