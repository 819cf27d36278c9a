"""Demo and load traffic for seed 003: sensor readings and user activity in the seed's shapes.

Callers: `generate_readings`, `demo_traffic`, the benchmarks and tests. Pure.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils import timezone

ACTIONS = ("click", "view", "add_to_cart", "purchase", "login", "logout", "search")


def sensor_events(n: int, *, sensors: int = 10, now: datetime | None = None,
                  rng: random.Random | None = None) -> list[dict[str, Any]]:
    """`n` sensor readings in the seed's shape, temperatures around the thresholds."""
    rng = rng or random.Random()
    now = now or timezone.now()
    return [
        {
            "timestamp": (now - timedelta(milliseconds=10 * (n - i))).astimezone(UTC).isoformat(),
            "sensor_id": f"sensor-{rng.randint(1, sensors)}",
            "temperature_celsius": round(rng.uniform(15.0, 30.0), 2),
            "humidity_percent": round(rng.uniform(20.0, 80.0), 2),
        }
        for i in range(n)
    ]


def activity_events(n: int, *, users: int = 50, now: datetime | None = None,
                    rng: random.Random | None = None) -> list[dict[str, Any]]:
    """`n` user activity events in the seed's shape (clicks, purchases, ...)."""
    rng = rng or random.Random()
    now = now or timezone.now()
    sessions: dict[int, str] = {}
    events = []
    for i in range(n):
        user = rng.randint(1, users)
        session = sessions.setdefault(user, uuid.uuid4().hex[:12])
        action = rng.choice(ACTIONS)
        details: dict[str, Any] = {"page": rng.choice(["/", "/products", "/cart", "/checkout"])}
        if action == "purchase":
            details["amount"] = round(rng.uniform(5, 300), 2)
        events.append({
            "event_timestamp": (now - timedelta(milliseconds=10 * (n - i))).astimezone(UTC).isoformat(),
            "user_id": f"user-{user}",
            "session_id": session,
            "action": action,
            "details": details,
        })
    return events
