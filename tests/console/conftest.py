from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.test import Client


@pytest.fixture
def operator(transactional_db):
    user = get_user_model().objects.create_user("ops-operator", is_staff=True)
    user.groups.add(Group.objects.get(name="operators"))
    return user


@pytest.fixture
def viewer(transactional_db):
    """Staff who may read task results and the operations pages, and nothing more."""
    user = get_user_model().objects.create_user("ops-viewer", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(
        content_type__app_label__in=["django_celery_results", "console"],
        codename__in=["view_taskresult", "view_operations", "view_auditentry"]))
    return user


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client
