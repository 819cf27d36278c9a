"""Admin of the product catalog (seed 004): list, edit, soft-delete and restore.

Products are registered through Kafka, never added here; deletes are soft.
Discovered through streams/admin.py.
"""

from __future__ import annotations

from django.contrib import admin, messages

from console.admin_base import log_change

from .models import Product
from .services import product_soft_delete


class DeletedFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("active", "Active"), ("deleted", "Deleted")]

    def queryset(self, request, queryset):
        if self.value() == "active":
            return queryset.filter(deleted_at__isnull=True)
        if self.value() == "deleted":
            return queryset.filter(deleted_at__isnull=False)
        return queryset


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["product_id", "name", "category", "price", "currency", "stock_quantity",
                    "availability_timestamp", "updated_at", "deleted_at"]
    list_filter = [DeletedFilter, "category", "currency"]
    search_fields = ["product_id", "name", "category"]
    readonly_fields = ["product_id", "payload", "availability_timestamp", "created_at", "updated_at", "deleted_at"]
    fields = ["product_id", "name", "description", "price", "currency", "stock_quantity", "category",
              "availability_timestamp", "payload", "created_at", "updated_at", "deleted_at"]
    actions = ["soft_delete", "restore"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # products are registered through Kafka (POST /api/products/register/)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # deletes are soft: the orders pipeline still resolves deleted products

    @admin.action(permissions=["change"], description="Soft-delete the selected products")
    def soft_delete(self, request, queryset):
        count = 0
        for product in queryset.filter(deleted_at__isnull=True):
            product_soft_delete(product=product)
            log_change(request, product, "Soft-deleted from the admin")
            count += 1
        self.message_user(request, f"{count} product(s) soft-deleted.", messages.SUCCESS)

    @admin.action(permissions=["change"], description="Restore the selected (soft-deleted) products")
    def restore(self, request, queryset):
        count = 0
        for product in queryset.filter(deleted_at__isnull=False):
            product.deleted_at = None
            product.save(update_fields=["deleted_at", "updated_at"])
            log_change(request, product, "Restored from the admin")
            count += 1
        self.message_user(request, f"{count} product(s) restored.", messages.SUCCESS)
