"""What the admins of every app share."""

from __future__ import annotations

from django.contrib import admin


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
