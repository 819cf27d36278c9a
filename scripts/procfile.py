"""Print the Procfile for `make run`: the fixed processes plus one per consumer."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")

import django  # noqa: E402

django.setup()

from streams.kafka.registry import consumers  # noqa: E402

print((ROOT / "Procfile").read_text().rstrip())
for name in consumers():
    print(f"consumer-{name}: .venv/bin/python manage.py run_consumer {name}")
demo = os.environ.get("DEMO", "1")
if demo != "0":
    print("demo: .venv/bin/python manage.py demo_traffic --forever")
