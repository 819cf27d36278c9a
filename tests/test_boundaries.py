"""The rooms' boundaries, read from the source (no test service is needed).

The import contracts are import-linter's, in `.importlinter` at the root:
the Kafka platform imports no app, and the others reach its producer only
through the front door (streams.kafka.producer); the stream pipelines never
import each other except the declared lookups (orders -> the products catalog, the report
-> what telemetry stores); quarantine imports no app that registers a source;
no app imports the console's entry points, the operations console (console.ops)
or the demo data (console.demo); the console's configuration and shared web kit
never import the operations console; and nothing imports in a circle.
docs/ARCHITECTURE.md draws them. Each is also named here, so that a contract
dropped from the file fails the test rather than passing unnoticed.

A module over 420 lines states at its top why it is one room
(a docstring line starting "Long:").
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ("console", "ingest", "quarantine", "streams")
MAX_LINES = 420
CONTRACTS = ("platform", "pipelines", "quarantine", "producer", "apps", "kit", "acyclic")


def test_the_import_contracts_hold():
    lint = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run([str(lint), "--config", str(ROOT / ".importlinter"), "--no-cache"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def test_every_room_has_its_contract():
    declared = set(re.findall(r"^\[importlinter:contract:([\w-]+)\]", (ROOT / ".importlinter").read_text(), re.M))
    assert set(CONTRACTS) <= declared, f"missing: {sorted(set(CONTRACTS) - declared)}"


def test_a_long_module_says_why():
    long = []
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            text = path.read_text()
            if text.count("\n") > MAX_LINES and "\nLong:" not in text.split('"""')[1 if text.startswith('"""') else 0]:
                long.append(f"{path.relative_to(ROOT)}: {text.count(chr(10))} lines")
    assert not long, "\n".join(long)
