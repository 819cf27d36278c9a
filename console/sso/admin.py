"""Admin › Single sign-on › identities: which provider subject each account is, and the
groups and roles of its last login (read-only: the provider is the source of truth)."""

from django.contrib import admin

from .models import SsoIdentity


@admin.register(SsoIdentity)
class SsoIdentityAdmin(admin.ModelAdmin):
    list_display = ["user", "subject", "issuer", "last_roles", "last_login_at"]
    search_fields = ["user__username", "subject"]
    readonly_fields = ["user", "issuer", "subject", "created_at", "last_login_at", "last_groups", "last_roles"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        # Deleting the account deletes its identity; alone, the next login would make a second account.
        return False
