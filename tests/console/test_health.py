import pytest
from django.contrib.auth import get_user_model

pytestmark = pytest.mark.services  # /healthz reaches every service


@pytest.fixture
def staff_client(client, db):
    client.force_login(get_user_model().objects.create_user("health-staff", is_staff=True))
    return client


@pytest.mark.django_db
def test_healthz_is_200_when_every_service_is_up(staff_client):
    response = staff_client.get("/healthz")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["failing"] == []
    assert {name: c["status"] for name, c in body["checks"].items()} == {
        "postgres": "up", "redis": "up", "kafka": "up",
    }


@pytest.mark.django_db
def test_healthz_is_503_naming_kafka_when_the_broker_is_unreachable(staff_client, settings):
    settings.KAFKA_BOOTSTRAP_SERVERS = "127.0.0.1:1"
    settings.HEALTHCHECK_TIMEOUT_SECONDS = 1.0
    response = staff_client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["kafka"]
    assert body["checks"]["kafka"]["status"] == "down"
    assert body["checks"]["postgres"]["status"] == "up"


@pytest.mark.django_db
def test_anonymous_callers_get_the_status_only(client, settings):
    """Load balancers may ask; the errors (hosts, ports) and consumers are for staff."""
    assert client.get("/healthz").json().keys() == {"status"}
    settings.KAFKA_BOOTSTRAP_SERVERS = "127.0.0.1:1"
    settings.HEALTHCHECK_TIMEOUT_SECONDS = 1.0
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable"}
    non_staff = get_user_model().objects.create_user("health-user")
    client.force_login(non_staff)
    assert client.get("/healthz").json() == {"status": "unavailable"}
