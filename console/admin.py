"""The console app's admin, discovered by Django: what it registers is the operations
console's (console/ops/admin.py: Celery's task results with retry and revoke, the audit log)."""

from .ops import admin as _ops_admin  # noqa: F401  (registers on import)
