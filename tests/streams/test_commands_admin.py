"""The service-token command and the admin's permission checks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from streams.models import CorrelationReport, Product


@pytest.mark.django_db
def test_create_service_token_prints_a_working_token(kafka, capsys):
    call_command("create_service_token", "gateway-1")
    out = capsys.readouterr().out
    assert "service account 'gateway-1' (created, group 'telemetry-publishers'); created token:" in out
    key = out.split("Authorization: Token ")[1].strip()
    user = get_user_model().objects.get(username="gateway-1")
    assert not user.has_usable_password() and not user.is_staff
    call_command("create_service_token", "gateway-1", "--quiet")
    assert capsys.readouterr().out.strip() == key  # idempotent: the same token
    call_command("create_service_token", "gateway-1", "--quiet", "--rotate")
    rotated = capsys.readouterr().out.strip()
    assert rotated != key
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {rotated}")
    assert client.post("/api/metrics/", {"id": 1, "val": 2.0, "time": 1624378100}, format="json").status_code == 202
    # Its whole scope is its group: publish telemetry and registrations, nothing else.
    assert list(user.groups.values_list("name", flat=True)) == ["telemetry-publishers"]
    assert client.get("/api/metrics/").status_code == 403
    assert client.post("/api/reports/", {}, format="json").status_code == 403

    call_command("create_service_token", "gateway-1", "--revoke")
    assert "token revoked" in capsys.readouterr().out
    assert client.post("/api/metrics/", {"id": 1, "val": 2.0, "time": 1624378100}, format="json").status_code == 401


@pytest.mark.django_db
def test_create_service_token_with_another_group(capsys):
    from django.contrib.auth.models import Group

    Group.objects.create(name="readers")
    call_command("create_service_token", "reporting", "--group", "readers", "--quiet")
    user = get_user_model().objects.get(username="reporting")
    assert list(user.groups.values_list("name", flat=True)) == ["readers"]
    with pytest.raises(CommandError, match="no group 'nope'"):
        call_command("create_service_token", "other", "--group", "nope")
    assert not get_user_model().objects.filter(username="other").exists()


@pytest.mark.django_db
def test_create_service_token_refuses_staff_accounts(admin_user):
    with pytest.raises(CommandError, match="staff account"):
        call_command("create_service_token", admin_user.username)


@pytest.fixture
def operator(db):
    user = get_user_model().objects.create_user(username="operator", password="x", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=[
        "view_correlationreport", "view_product", "change_product"]))
    return user


@pytest.mark.django_db
def test_building_a_report_from_the_admin_needs_the_permission(client, operator):
    client.force_login(operator)
    listing = client.get("/admin/streams/correlationreport/")
    assert listing.status_code == 200 and "Build report now" not in listing.content.decode()
    assert client.post("/admin/streams/correlationreport/build/").status_code == 403
    assert not CorrelationReport.objects.exists()


@pytest.mark.django_db
def test_admin_soft_delete_action_logs_and_keeps_the_row(client, operator):
    product = Product.objects.create(product_id="p-9", name="Nine", price=1, currency="BRL",
                                     availability_timestamp=datetime(2026, 1, 1, tzinfo=UTC))
    client.force_login(operator)
    response = client.post("/admin/streams/product/", {"action": "soft_delete", "_selected_action": [product.pk]},
                           follow=True)
    assert "1 product(s) soft-deleted." in response.content.decode()
    product.refresh_from_db()
    assert product.deleted_at is not None
    assert LogEntry.objects.filter(object_id=str(product.pk), change_message="Soft-deleted from the admin").exists()
