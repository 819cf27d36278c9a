"""What the admins of every app share: read-only admins and the admin's change log.

`log_changes` is the one writer of Django's admin log (`LogEntry`, each
object's History page), for the admin's own pages and for the services an
operator calls from them (a bulk quarantine action, a release of late orders,
a rebuild of order windows). The audit log of operator actions is another
thing (console/audit.py): it records every outcome, refused and failed ones
included, whatever the entry point.

Imported by every app's admin and by services that act for an admin user; imports only Django.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib import admin
from django.contrib.admin.models import CHANGE, LogEntry
from django.db.models import Model
from django.http import HttpRequest


def log_changes(*, user: Any, objects: Iterable[Model], message: str, flag: int = CHANGE) -> None:
    """One entry per object in Django's admin log (each object's History): who
    did what to it. Objects are written in one INSERT (one: a plain save)."""
    objects = list(objects)
    if objects:
        LogEntry.objects.log_actions(user_id=user.pk, queryset=objects, action_flag=flag, change_message=message)


def log_change(request: HttpRequest, obj: Model, message: str, flag: int = CHANGE) -> None:
    """`log_changes` for one object, by the user of an admin request."""
    log_changes(user=request.user, objects=[obj], message=message, flag=flag)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows that only the pipelines write: listed and shown, never added or
    edited in the admin. Deleting is refused too unless `deletable` (then the
    user's delete permission decides, as usual)."""

    deletable = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return self.deletable and super().has_delete_permission(request, obj)


class DeletableReadOnlyAdmin(ReadOnlyAdmin):
    """Read-only rows that may be deleted by hand, with the usual delete permission."""

    deletable = True
