"""Writes to quarantine, one module per responsibility. Every pipeline and every
entry point (admin actions, the API, `manage.py quarantine`, Celery) calls
these, never the model directly:

    recording.py  rejected messages, quarantined files and failed tasks become records
    actions.py    release / reprocess / discard of one record (lock, check, work, mark, audit)
    bulk.py       the same on a selection, and `quarantine_bulk_action`, the one bulk
                  dispatcher of the admin, the API and the command
    redrive.py    messages re-driven to their topic, tasks re-queued, with the replay headers
    results.py    what the actions answer: one record's result, or a selection's
    retention.py  discarded originals purged when their retention ends
    defaults.py   the operators group and the cleanup schedule, recreated after migrate

Every outcome, refused and failed ones included, is an entry in the console's
one audit log, and a refused or failed action raises the console's errors
(console/audit.py: ActionError, ActionRefused).

Callers import from `quarantine.services` (the names below), not from the modules.
"""

from console.audit import Outcome

from ..models import QuarantineAuditEntry as _AuditEntry
from .actions import quarantine_discard, quarantine_release, quarantine_reprocess
from .bulk import (
    BULK_ACTIONS,
    quarantine_bulk_action,
    quarantine_discard_many,
    quarantine_release_many,
    quarantine_reprocess_many,
)
from .defaults import quarantine_defaults_ensure
from .recording import quarantine_dead_letters, quarantine_file, quarantine_task_failure
from .results import ActionResult, BulkResult
from .retention import quarantine_purge_expired

Action = _AuditEntry.Action

__all__ = [
    "BULK_ACTIONS", "Action", "ActionResult", "BulkResult", "Outcome",
    "quarantine_bulk_action", "quarantine_dead_letters", "quarantine_defaults_ensure", "quarantine_discard",
    "quarantine_discard_many", "quarantine_file", "quarantine_purge_expired", "quarantine_release",
    "quarantine_release_many", "quarantine_reprocess", "quarantine_reprocess_many", "quarantine_task_failure",
]
