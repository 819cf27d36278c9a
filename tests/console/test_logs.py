"""LOG_FORMAT=json: each event's fields become keys (pure formatting, no services)."""

from __future__ import annotations

import json
import logging

from console.logs import EventJsonFormatter


def _format(message: str, *args) -> dict:
    record = logging.LogRecord("streams.kafka.runtime", logging.INFO, __file__, 1, message, args, None)
    return json.loads(EventJsonFormatter("%(message)s").format(record))


def test_an_event_line_becomes_an_object_with_typed_fields():
    line = _format("consumer_batch consumer=%s messages=%d ms=%.1f retry_in=%.1fs", "telemetry", 500, 12.5, 2.0)
    assert line["event"] == "consumer_batch" and line["level"] == "INFO"
    assert line["logger"] == "streams.kafka.runtime"
    assert (line["consumer"], line["messages"], line["ms"], line["retry_in"]) == ("telemetry", 500, 12.5, 2.0)
    assert line["message"].startswith("consumer_batch consumer=telemetry")


def test_free_text_stays_a_message():
    line = _format("Bad Request: /api/metrics/")
    assert "event" not in line and line["message"] == "Bad Request: /api/metrics/"
