"""Product registration (seed 004): API -> cadastro-produtos -> catalog -> produtos-persistidos."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from quarantine.models import QuarantineRecord
from streams.kafka.producer import Outbound, produce_and_wait
from streams.kafka.registry import MessageRejected
from streams.models import Product
from streams.products.services import catalog_upsert, registration_transform, validate_registration
from tests.api_fixtures import end_offsets
from tests.conftest import wait_until

SEED = {  # seed 004, unchanged
    "productId": "12369",
    "productName": "Nome do Produto",
    "productDescription": "Descrição do Produto",
    "price": 100.0,
    "currency": "BRL",
    "stockQuantity": 50,
    "category": "Categoria do Produto",
}


def test_validation_normalizes_and_collects_every_error():
    assert validate_registration({**SEED, "productId": 12369, "currency": "brl"})["productId"] == "12369"
    with pytest.raises(MessageRejected) as exc:
        validate_registration({"productId": "", "price": -1, "currency": "REAIS", "stockQuantity": 1.5})
    fields = {e["field"] for e in exc.value.errors}
    assert fields == {"productId", "productName", "price", "currency", "stockQuantity"}


def test_transform_shape():
    ts = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert registration_transform(validate_registration(SEED), timestamp=ts) == {
        "id": "12369",
        "name": "Nome do Produto",
        "description": "Descrição do Produto",
        "pricing": {"amount": 100.0, "currency": "BRL"},
        "availability": {"quantity": 50, "timestamp": "2026-01-02T03:04:05+00:00"},
        "category": "Categoria do Produto",
    }


@pytest.mark.django_db
def test_register_publishes_the_registration(kafka, client_token):
    response = client_token.post("/api/products/register/", SEED, format="json")
    assert response.status_code == 202, response.content
    assert response.json() == {"accepted": 1, "topic": kafka.name("product_registrations"), "productId": "12369"}
    [message] = kafka.read("product_registrations", expected=1)
    assert json.loads(message.value()) == SEED
    assert message.key() == b"12369"


@pytest.mark.django_db
def test_register_rejects_bad_input_and_anonymous_callers(kafka, client_token, anonymous):
    bad = client_token.post("/api/products/register/", {**SEED, "price": "cem", "currency": "R$"}, format="json")
    assert bad.status_code == 400
    assert set(bad.json()) == {"price", "currency"}
    assert client_token.post("/api/products/register/", [SEED], format="json").status_code == 400
    assert anonymous.post("/api/products/register/", SEED, format="json").status_code == 401
    assert end_offsets(kafka, "product_registrations") == 0


@pytest.mark.django_db
def test_register_answers_503_when_kafka_is_down(client_token, kafka_down):
    response = client_token.post("/api/products/register/", SEED, format="json")
    assert response.status_code == 503
    assert "Kafka is unavailable" in response.json()["detail"]


def test_round_trip_through_kafka_to_the_catalog_and_produtos_persistidos(kafka, processes, client_token,
                                                                          fresh_producer):
    consumer = processes.consumer("products")
    assert client_token.post("/api/products/register/", SEED, format="json").status_code == 202
    product = wait_until(lambda: Product.objects.filter(product_id="12369").first(), message="the product row")
    assert (product.name, product.description, product.currency, product.stock_quantity, product.category) == (
        "Nome do Produto", "Descrição do Produto", "BRL", 50, "Categoria do Produto")
    assert float(product.price) == 100.0
    assert product.payload == SEED
    assert product.availability_timestamp is not None

    [persisted] = kafka.read("products_persisted", expected=1)
    document = json.loads(persisted.value())
    assert persisted.key() == b"12369"
    assert {k: document[k] for k in ("id", "name", "description", "pricing", "category")} == {
        "id": "12369", "name": "Nome do Produto", "description": "Descrição do Produto",
        "pricing": {"amount": 100.0, "currency": "BRL"}, "category": "Categoria do Produto"}
    assert document["availability"]["quantity"] == 50
    assert datetime.fromisoformat(document["availability"]["timestamp"]) == product.availability_timestamp

    # A newer registration of the same product updates the row, and a malformed one is dead-lettered.
    update = {**SEED, "price": 120.5, "stockQuantity": 7}
    assert client_token.post("/api/products/register/", update, format="json").status_code == 202
    produce_and_wait([Outbound(kafka.name("product_registrations"), {"productId": "x", "price": "free"})])
    wait_until(lambda: Product.objects.get(product_id="12369").stock_quantity == 7, message="the update")
    wait_until(lambda: QuarantineRecord.objects.filter(consumer="products").exists(), message="quarantine")
    record = QuarantineRecord.objects.get(consumer="products")
    assert {e["field"] for e in record.errors} >= {"productName", "price", "currency", "stockQuantity"}
    assert len(kafka.read("dead_letters", expected=1)) == 1
    assert len(kafka.read("products_persisted", expected=2)) == 2
    assert Product.objects.count() == 1
    processes.stop(consumer)

    # Replaying the whole topic (a new consumer group) changes nothing in the catalog.
    before = Product.objects.values().get()
    processes.consumer("products", CONSUMER_GROUP_PREFIX=kafka.group_prefix + "-replay")
    # The replay re-publishes the persisted product (once or twice, by batching) and the dead letter.
    wait_until(lambda: end_offsets(kafka, "dead_letters") >= 2 and end_offsets(kafka, "products_persisted") >= 3,
               message="the replayed messages processed")
    assert Product.objects.values().get() == before
    assert QuarantineRecord.objects.filter(consumer="products").count() == 1


def _item(pid: str, ts: datetime, **changes) -> dict:
    registration = validate_registration({**SEED, "productId": pid, **changes})
    return {"document": registration_transform(registration, timestamp=ts), "payload": registration,
            "timestamp": ts}


@pytest.mark.django_db
def test_upsert_is_guarded_by_the_registration_timestamp():
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    catalog_upsert(items=[_item("a", t0, stockQuantity=1), _item("a", t0 + timedelta(seconds=1), stockQuantity=2),
                          _item("b", t0)])
    assert dict(Product.objects.values_list("product_id", "stock_quantity")) == {"a": 2, "b": 50}
    catalog_upsert(items=[_item("a", t0, stockQuantity=9)])  # older: ignored
    assert Product.objects.get(product_id="a").stock_quantity == 2
    Product.objects.filter(product_id="b").update(deleted_at=t0)
    catalog_upsert(items=[_item("b", t0)])  # the same registration replayed: stays deleted
    assert Product.objects.get(product_id="b").deleted_at is not None
    catalog_upsert(items=[_item("b", t0 + timedelta(hours=1))])  # registered again: back in the catalog
    assert Product.objects.get(product_id="b").deleted_at is None


@pytest.fixture
def three_products(db):
    """p-1 (tools), p-2 and p/3 (toys, and a slash in its id): rows to read, edit and delete."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return [Product.objects.create(product_id=pid, name=f"Product {pid}", price=10, currency="BRL",
                                   category=cat, stock_quantity=3, availability_timestamp=now)
            for pid, cat in (("p-1", "tools"), ("p-2", "toys"), ("p/3", "toys"))]


def test_read_update_delete_endpoints(three_products, client_reader, client_operator, anonymous):
    assert anonymous.get("/api/products/").status_code == 401
    listing = client_reader.get("/api/products/?category=toys").json()
    assert [p["product_id"] for p in listing["results"]] == ["p-2", "p/3"]
    one = client_reader.get("/api/products/p-1/").json()
    assert one["document"]["pricing"] == {"amount": 10.0, "currency": "BRL"}

    assert anonymous.patch("/api/products/p-1/", {"price": "12.50"}, format="json").status_code == 401
    assert anonymous.delete("/api/products/p-1/").status_code == 401
    assert client_reader.patch("/api/products/p-1/", {"price": "12.50"}, format="json").status_code == 403
    patched = client_operator.patch("/api/products/p-1/", {"price": "12.50", "currency": "usd"}, format="json")
    assert patched.status_code == 200, patched.content
    assert patched.json()["price"] == "12.50" and patched.json()["currency"] == "USD"
    bad = client_operator.patch("/api/products/p-1/", {"currency": "dollars", "stock_quantity": -1}, format="json")
    assert bad.status_code == 400 and set(bad.json()) == {"currency", "stock_quantity"}
    assert client_operator.patch("/api/products/p-1/", {"product_id": "zzz"}, format="json").json()["product_id"] == "p-1"

    assert client_operator.delete("/api/products/p-2/").status_code == 204
    assert Product.objects.get(product_id="p-2").deleted_at is not None  # soft delete: the row stays
    assert client_reader.get("/api/products/p-2/").status_code == 404
    assert client_reader.get("/api/products/p-2/?include_deleted=true").json()["deleted_at"]
    assert [p["product_id"] for p in client_reader.get("/api/products/").json()["results"]] == ["p-1", "p/3"]
    assert anonymous.post("/api/products/", {"product_id": "new"}, format="json").status_code in (401, 405)
    assert client_operator.post("/api/products/", {"product_id": "new"}, format="json").status_code == 405


def test_a_service_token_may_not_edit_or_delete_products(three_products, client_token):
    """The token of `create_service_token` publishes telemetry and registrations, nothing more."""
    assert client_token.patch("/api/products/p-1/", {"price": "1.00"}, format="json").status_code == 403
    assert client_token.delete("/api/products/p-1/").status_code == 403
    assert client_token.get("/api/products/").status_code == 403
    product = Product.objects.get(product_id="p-1")
    assert float(product.price) == 10.0 and product.deleted_at is None
