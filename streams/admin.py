"""The admin of the streams app: each pipeline's admin, imported for discovery, and the
platform's one screen, the consumers' heartbeats.

Each pipeline keeps its screens in `streams/<pipeline>/admin.py`; this module
only imports them (Django's autodiscovery imports `streams.admin`).
"""

from __future__ import annotations

from django.contrib import admin

from console.admin_base import ReadOnlyAdmin

from .activity import admin as activity_admin  # noqa: F401
from .kafka.models import ConsumerHeartbeat
from .orders import admin as orders_admin  # noqa: F401
from .products import admin as products_admin  # noqa: F401
from .report import admin as report_admin  # noqa: F401
from .telemetry import admin as telemetry_admin  # noqa: F401


@admin.register(ConsumerHeartbeat)
class ConsumerHeartbeatAdmin(ReadOnlyAdmin):
    """Every consumer process's last heartbeat: state, reason, counters."""

    list_display = ["consumer", "member", "state", "reason", "beat_at", "last_batch_at", "messages", "applied",
                    "dead_lettered", "refused"]
    list_filter = ["state", "consumer"]
