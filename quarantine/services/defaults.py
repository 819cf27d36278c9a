"""The default quarantine needs in the database: the hourly cleanup in Celery beat's schedule.

The `operators` group, with the quarantine actions among its permissions, is
the console's (console/roles.py owns every group), so it is defined once.

Called by: quarantine/apps.py (after every migrate); migration 0003 creates
the same rows first.
"""

from __future__ import annotations

CLEANUP_TASK = "quarantine.purge_expired"
CLEANUP_SCHEDULE_NAME = "quarantine: purge expired discarded originals"


def quarantine_defaults_ensure() -> None:
    """The hourly cleanup in beat's schedule. Migration 0003 creates it; this (run
    after every migrate) recreates it if it is missing, leaving it as the admins set it."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    if not PeriodicTask.objects.filter(task=CLEANUP_TASK).exists():
        every_hour, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.HOURS)
        PeriodicTask.objects.get_or_create(
            name=CLEANUP_SCHEDULE_NAME, defaults={"task": CLEANUP_TASK, "interval": every_hour})
