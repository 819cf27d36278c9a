"""The defaults quarantine needs in the database: the `operators` group with
the action permissions, and the hourly cleanup in Celery beat's schedule.

Called by: quarantine/apps.py (after every migrate); migration 0003 creates
the same rows first.
Imports: Django's auth models and django_celery_beat's, at call time.
"""

from __future__ import annotations

OPERATORS_GROUP = "operators"
OPERATOR_PERMISSIONS = (
    "view_quarantinerecord",
    "release_quarantinerecord",
    "reprocess_quarantinerecord",
    "discard_quarantinerecord",
    "view_quarantineauditentry",
)


CLEANUP_TASK = "quarantine.purge_expired"
CLEANUP_SCHEDULE_NAME = "quarantine: purge expired discarded originals"


def quarantine_defaults_ensure() -> None:
    """The `operators` group and the hourly cleanup in beat's schedule.
    Migration 0003 creates both; this (run after every migrate) recreates
    whichever is missing, leaving existing ones as the admins set them."""
    from django.contrib.auth.models import Group, Permission
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    group, created = Group.objects.get_or_create(name=OPERATORS_GROUP)
    if created:
        group.permissions.add(*Permission.objects.filter(
            content_type__app_label="quarantine", codename__in=OPERATOR_PERMISSIONS))
    if not PeriodicTask.objects.filter(task=CLEANUP_TASK).exists():
        every_hour, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.HOURS)
        PeriodicTask.objects.get_or_create(
            name=CLEANUP_SCHEDULE_NAME, defaults={"task": CLEANUP_TASK, "interval": every_hour})
