"""The console's audit log: one row per operator action (console.models.AuditEntry)."""

from __future__ import annotations

import logging
from typing import Any

from .models import AuditEntry

logger = logging.getLogger(__name__)


def audit_record(*, by: Any, action: str, target: str, outcome: str, detail: dict[str, Any] | None = None
                 ) -> AuditEntry:
    """Write the entry and log the same event (`operator_action`)."""
    user = by if getattr(by, "pk", None) else None
    entry = AuditEntry.objects.create(
        actor=user, actor_name=getattr(by, "get_username", lambda: str(by or "system"))()[:150],
        action=action[:64], target=target[:255], outcome=outcome, detail=detail or {},
    )
    logger.info("operator_action action=%s target=%s outcome=%s actor=%s entry=%s",
                action, target, outcome, entry.actor_name, entry.pk)
    return entry
