"""Fixtures of the API tests: users by role, token and session clients, a Kafka that is down.

Roles are those of docs/SECURITY.md: a service account (the group
`create_service_token` uses), a reader (view permissions only) and an operator
(the `operators` group)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from console.tokens import CachedTokenAuthentication
from streams.kafka import producer as producer_module


@pytest.fixture(autouse=True)
def _test_host(settings):
    settings.ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
    CachedTokenAuthentication.forget()
    yield
    CachedTokenAuthentication.forget()


@pytest.fixture
def service_user(db):
    """A service account as `create_service_token` makes it: in `telemetry-publishers`."""
    user = get_user_model().objects.create_user(username="svc-test")
    user.groups.add(Group.objects.get(name="telemetry-publishers"))
    return user


@pytest.fixture
def reader(db):
    """Every view permission of the pipelines' tables, nothing else."""
    user = get_user_model().objects.create_user(username="reader-test")
    user.user_permissions.add(*Permission.objects.filter(
        content_type__app_label__in=["streams", "ingest", "quarantine"], codename__startswith="view_"))
    return user


@pytest.fixture
def client_reader(reader) -> APIClient:
    client = APIClient()
    client.force_authenticate(reader)
    return client


@pytest.fixture
def operator_user(db):
    user = get_user_model().objects.create_user(username="operator-test", is_staff=True)
    user.groups.add(Group.objects.get(name="operators"))
    return user


@pytest.fixture
def client_operator(operator_user) -> APIClient:
    client = APIClient()
    client.force_authenticate(operator_user)
    return client


@pytest.fixture
def token(service_user) -> Token:
    return Token.objects.create(user=service_user)


@pytest.fixture
def client_token(token) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def anonymous() -> APIClient:
    return APIClient()


@pytest.fixture
def kafka_down(settings) -> Iterator[None]:
    """Point the producer at a port nothing listens on, with a short ack deadline."""
    settings.KAFKA_BOOTSTRAP_SERVERS = "127.0.0.1:1"
    settings.KAFKA_PRODUCE_TIMEOUT_SECONDS = 1.0
    producer_module._producer = None
    yield
    producer_module._producer = None


@pytest.fixture
def fresh_producer() -> Iterator[None]:
    producer_module._producer = None
    yield


def end_offsets(kafka, logical: str, attempts: int = 40) -> int:
    """kafka.end_offsets, retried while a just-created topic has no partition leader yet."""
    import time as _time

    from confluent_kafka import KafkaException

    for attempt in range(attempts):
        try:
            return kafka.end_offsets(logical)
        except KafkaException:
            if attempt == attempts - 1:
                raise
            _time.sleep(0.25)
    raise AssertionError("unreachable")
