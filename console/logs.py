"""Log lines as events: `LOG_FORMAT=json` for JSON lines, key=value text otherwise.

Every log line of the console is written as an event name followed by its
fields (`consumer_batch consumer=telemetry messages=500 ms=12.5`). The text
format prints that as it is, after the time, level and logger; the JSON
format (python-json-logger) turns it into one object per line with `event`
and each field as its own key, numbers as numbers, so a log pipeline can
filter on `consumer` or sum `messages` without parsing text.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from pythonjsonlogger.json import JsonFormatter

_FIELD = re.compile(r"(\w+)=(\S*)")
_EVENT = re.compile(r"^[a-z][a-z0-9_]*$")
_RESERVED = {"event", "level", "logger", "time", "message"}


def _value(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text.rstrip("s") if kind is float and text.endswith("s") else text)
        except ValueError:
            continue
    return text


class EventJsonFormatter(JsonFormatter):
    """`event key=value ...` messages as JSON objects; any other message as `message`."""

    def add_fields(self, log_record: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        super().add_fields(log_record, record, message_dict)
        log_record["time"] = self.formatTime(record)
        log_record["level"] = record.levelname
        log_record["logger"] = record.name
        text = record.getMessage()
        head, _, rest = text.partition(" ")
        if _EVENT.match(head):
            log_record["event"] = head
            for key, raw in _FIELD.findall(rest):
                log_record[key if key not in _RESERVED else f"{key}_"] = _value(raw)
        for noise in ("levelname", "name", "asctime"):
            log_record.pop(noise, None)


def formatters() -> dict[str, dict[str, Any]]:
    return {
        "plain": {"format": "ts=%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"},
        "json": {"()": EventJsonFormatter, "format": "%(message)s"},
    }
