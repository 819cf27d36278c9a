"""What the admins of every app share: read-only admins and the admin's change log.

Imported by every app's admin; imports only Django.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.models import CHANGE, LogEntry
from django.http import HttpRequest


def log_change(request: HttpRequest, obj, message: str, flag: int = CHANGE) -> None:
    """One entry in Django's admin log (the object's History): who did what to it from the admin."""
    LogEntry.objects.log_actions(user_id=request.user.pk, queryset=[obj], action_flag=flag,
                                 change_message=message, single_object=True)


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
