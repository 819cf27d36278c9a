import pytest


@pytest.mark.django_db
def test_healthz_is_200_when_every_service_is_up(client):
    response = client.get("/healthz")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["failing"] == []
    assert {name: c["status"] for name, c in body["checks"].items()} == {
        "postgres": "up", "redis": "up", "kafka": "up",
    }


@pytest.mark.django_db
def test_healthz_is_503_naming_kafka_when_the_broker_is_unreachable(client, settings):
    settings.KAFKA_BOOTSTRAP_SERVERS = "127.0.0.1:1"
    settings.HEALTHCHECK_TIMEOUT_SECONDS = 1.0
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["kafka"]
    assert body["checks"]["kafka"]["status"] == "down"
    assert body["checks"]["postgres"]["status"] == "up"
