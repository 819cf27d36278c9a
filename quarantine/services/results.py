"""What a quarantine action answers: one record's result, or a selection's
(counted and summed up for the operator). The errors an action raises are the
console's (console/audit.py: ActionError, ActionRefused), and so is the audit
log every outcome is written to.

Called by: actions, bulk; the admin, the API and the command read the results.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from console.audit import Outcome


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
