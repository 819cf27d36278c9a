"""The products API (seed 004): /api/products/ (catalog reads, edits, soft delete) and
/api/products/register/ (publish a registration to cadastro-produtos).

Every action needs its own permission: reads the model's view permission,
edits and deletes its change and delete permissions, registration
`streams.register_product`. Registered by `register(router)` from
streams/urls.py.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from console.parsers import StrictJSONParser as JSONParser
from console.publishing import ACCEPTED, AUTHENTICATION, INVALID, UNAVAILABLE, field_errors, kafka_unavailable
from streams.kafka.producer import DeliveryError
from streams.kafka.registry import MessageRejected
from streams.kafka.topics import topic_name

from . import services as product_services
from .models import Product
from .services import CURRENCY_RE, MAX_STOCK, product_document


class RegistrationSchema(serializers.Serializer):
    productId = serializers.CharField(max_length=64)
    productName = serializers.CharField(max_length=255)
    productDescription = serializers.CharField(required=False, allow_blank=True)
    price = serializers.FloatField(min_value=0)
    currency = serializers.CharField(min_length=3, max_length=3, help_text="ISO 4217, e.g. BRL.")
    stockQuantity = serializers.IntegerField(min_value=0)
    category = serializers.CharField(required=False, allow_blank=True, max_length=120)


class ProductSerializer(serializers.ModelSerializer):
    document = serializers.SerializerMethodField(help_text="The catalog shape published to produtos-persistidos.")

    class Meta:
        model = Product
        fields = ["product_id", "name", "description", "price", "currency", "stock_quantity", "category",
                  "availability_timestamp", "created_at", "updated_at", "deleted_at", "payload", "document"]
        read_only_fields = ["product_id", "availability_timestamp", "created_at", "updated_at", "deleted_at",
                            "payload"]
        extra_kwargs = {"price": {"min_value": 0}, "stock_quantity": {"min_value": 0, "max_value": MAX_STOCK}}

    def get_document(self, product: Product) -> dict:
        return product_document(product)

    def validate_currency(self, value: str) -> str:
        value = value.upper()
        if not CURRENCY_RE.match(value):
            raise serializers.ValidationError("must be a 3-letter ISO 4217 code such as BRL")
        return value


@extend_schema(tags=["products"])
class ProductViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin,
                     mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """The product catalog. Registration goes through Kafka (`register`); DELETE is a soft delete."""

    authentication_classes = AUTHENTICATION
    serializer_class = ProductSerializer
    action_permissions = {"register": ["streams.register_product"]}
    lookup_field = "product_id"
    lookup_value_regex = "[^/]+"
    filterset_fields = ["category", "currency"]

    def include_deleted(self) -> bool:
        return self.request.query_params.get("include_deleted", "").lower() in ("1", "true", "yes")

    def get_queryset(self):
        qs = Product.objects.all() if self.include_deleted() else Product.objects.active()
        return qs.order_by("product_id")

    def perform_update(self, serializer) -> None:
        product_services.product_update(product=serializer.instance, changes=dict(serializer.validated_data))

    def perform_destroy(self, instance: Product) -> None:
        product_services.product_soft_delete(product=instance)

    @extend_schema(
        summary="Register a product (seed 004)",
        description="Validates the registration and publishes it to cadastro-produtos; the `products` "
                    "consumer upserts the catalog and publishes the persisted product to produtos-persistidos.",
        request=RegistrationSchema,
        responses={202: ACCEPTED, 400: INVALID, 503: UNAVAILABLE},
    )
    @action(detail=False, methods=["post"], url_path="register", parser_classes=[JSONParser])
    def register(self, request: Request, format: str | None = None) -> Response:
        if not isinstance(request.data, dict):
            return Response({"non_field_errors": ["expected a JSON object"]}, status=status.HTTP_400_BAD_REQUEST)
        try:
            registration = product_services.validate_registration(request.data)
        except MessageRejected as exc:
            return Response(field_errors(exc.errors), status=status.HTTP_400_BAD_REQUEST)
        try:
            product_services.registration_publish(registration=registration)
        except DeliveryError as exc:
            return kafka_unavailable(exc)
        return Response({"accepted": 1, "topic": topic_name("product_registrations"),
                         "productId": registration["productId"]}, status=status.HTTP_202_ACCEPTED)


def register(router) -> None:
    router.register("products", ProductViewSet, basename="product")
