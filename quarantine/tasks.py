"""Quarantine's Celery tasks: thin wrappers around the services.

Called by: Celery beat (`quarantine.purge_expired`, hourly; the schedule row
is created by migration 0003 and services.quarantine_defaults_ensure).
"""

from __future__ import annotations

from celery import shared_task

from .services import quarantine_purge_expired


@shared_task(name="quarantine.purge_expired", ignore_result=True)
def purge_expired() -> int:
    """Hourly (Celery beat): purge discarded originals whose retention ended."""
    return len(quarantine_purge_expired())
