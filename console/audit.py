"""The console's audit log: one row per operator action (console.models.AuditEntry),
and the two ways an action ends without its effect (failed, refused), which
every action service raises and every page shows to the operator."""

from __future__ import annotations

import logging
from typing import Any

from .models import AuditEntry

logger = logging.getLogger(__name__)


class ActionError(Exception):
    """The action could not be done; the message is for the operator."""

    outcome = AuditEntry.Outcome.FAILED

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ActionRefused(ActionError):
    """The action was not attempted: the request or the state does not allow it."""

    outcome = AuditEntry.Outcome.REFUSED


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
