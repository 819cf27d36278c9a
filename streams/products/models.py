"""The product catalog (seed 004), used to enrich orders (seed 002)."""

from __future__ import annotations

from django.db import models


class ProductQuerySet(models.QuerySet):
    def active(self) -> "ProductQuerySet":
        return self.filter(deleted_at__isnull=True)


class Product(models.Model):
    product_id = models.CharField(max_length=64, unique=True, help_text="`productId` of the registration.")
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    price = models.DecimalField(max_digits=14, decimal_places=2)
    currency = models.CharField(max_length=3)
    stock_quantity = models.IntegerField(default=0)
    category = models.CharField(max_length=120, blank=True, db_index=True)
    payload = models.JSONField(default=dict, blank=True, help_text="The registration as it arrived.")
    availability_timestamp = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True, help_text="Soft delete.")

    objects = ProductQuerySet.as_manager()

    class Meta:
        ordering = ["product_id"]
        # POST /api/products/register/ publishes a registration; change and
        # delete of catalog rows are the usual model permissions.
        permissions = [("register_product", "Can register products (publish to the registration topic)")]

    def __str__(self) -> str:
        return f"{self.product_id} {self.name}"
