"""What an operator action reports: its errors (the message is for the operator),
its result, one record's or a selection's, and the audit entries that record
every outcome, refused and failed ones included.

Called by: actions, bulk and retention; the admin, the API and the command
read the results and catch the errors.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..models import QuarantineAuditEntry, QuarantineRecord

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

Outcome = QuarantineAuditEntry.Outcome


class QuarantineActionError(Exception):
    """An action could not be done; the message is for the operator."""

    outcome = Outcome.FAILED

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class QuarantineActionRefused(QuarantineActionError):
    """The action is not allowed on this record (status, replay limit, missing reason)."""

    outcome = Outcome.REFUSED


@dataclass
class ActionResult:
    record_id: int
    action: str
    outcome: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class BulkResult:
    action: str
    results: list[ActionResult] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return dict(Counter(r.outcome for r in self.results))

    @property
    def succeeded(self) -> int:
        return self.counts().get(Outcome.SUCCEEDED, 0)

    def summary(self) -> str:
        if not self.results:
            return f"{self.action}: no records selected"
        parts = [f"{n} {Outcome(outcome).label.lower()}" for outcome, n in sorted(self.counts().items())]
        text = f"{self.action}: " + ", ".join(parts)
        problems = [r for r in self.results if r.outcome in (Outcome.REFUSED, Outcome.FAILED)]
        if problems:
            text += " (" + "; ".join(f"#{r.record_id}: {r.message}" for r in problems[:5])
            text += ", …)" if len(problems) > 5 else ")"
        return text


def actor_name(by: "AbstractBaseUser | None") -> str:
    return by.get_username() if by is not None else "system"


def audit(
    record: QuarantineRecord,
    *,
    by: "AbstractBaseUser | None",
    action: str,
    reason: str,
    outcome: str,
    details: dict[str, Any],
) -> QuarantineAuditEntry:
    return QuarantineAuditEntry.objects.create(
        record_id=record.pk,
        actor=by if by is not None and by.pk else None,
        actor_name=actor_name(by),
        action=action,
        reason=reason,
        outcome=outcome,
        details=details,
    )


def audit_many(records: Sequence[QuarantineRecord], *, by, action: str, reason: str, outcome: str,
                details: dict[str, Any] | None = None, per_record: dict[int, dict[str, Any]] | None = None) -> None:
    QuarantineAuditEntry.objects.bulk_create([
        QuarantineAuditEntry(
            record_id=r.pk, actor=by if by is not None and by.pk else None, actor_name=actor_name(by),
            action=action, reason=reason, outcome=outcome,
            details={**(details or {}), **((per_record or {}).get(r.pk, {}))},
        )
        for r in records
    ])


def audit_refusals(refused: Sequence[tuple[QuarantineRecord, str]], *, by, action: str, reason: str) -> None:
    QuarantineAuditEntry.objects.bulk_create([
        QuarantineAuditEntry(
            record_id=r.pk, actor=by if by is not None and by.pk else None, actor_name=actor_name(by),
            action=action, reason=reason, outcome=Outcome.REFUSED, details={"error": message},
        )
        for r, message in refused
    ])
