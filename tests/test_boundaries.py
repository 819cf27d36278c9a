"""Import boundaries, read from the source (no import is executed).

The Kafka platform (`streams/kafka/`) imports no app and no pipeline: dead
letters reach quarantine through the sink the quarantine app registers
(`streams.kafka.registry.set_dead_letter_sink`). Only the streams app's own
ConsumerHeartbeat model is allowed, for the heartbeat.

Quarantine imports no app that registers a source with it: ingest registers
its files (quarantine/sources.py), so ingest may import quarantine, never the
other way round.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ("console", "ingest", "quarantine", "streams")
PLATFORM_MAY_IMPORT = ("streams.kafka", "streams.models")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                found.add(".".join(base + ([node.module] if node.module else [])))
            elif node.module:
                found.add(node.module)
    return found


def test_the_kafka_platform_imports_no_app_and_no_pipeline():
    offending = []
    for path in sorted((ROOT / "streams" / "kafka").glob("*.py")):
        for module in imported_modules(path):
            if module.split(".")[0] in APPS and not module.startswith(PLATFORM_MAY_IMPORT):
                offending.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not offending, "\n".join(offending)


def test_quarantine_imports_no_app_that_registers_a_source():
    offending = []
    for path in sorted((ROOT / "quarantine").rglob("*.py")):
        if "migrations" in path.parts:
            continue
        for module in imported_modules(path):
            if module.split(".")[0] == "ingest":
                offending.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not offending, "\n".join(offending)
