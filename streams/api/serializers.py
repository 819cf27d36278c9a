"""Serializers of the streams API.

The telemetry and registration *rules* live in streams/telemetry.py and
streams/products.py (shared with the consumers); the event serializers here
only describe the payloads for the OpenAPI schema."""

from __future__ import annotations

from rest_framework import serializers

from streams.kafka.decoding import EPOCH_MAX, INT32_MAX
from streams.models import CorrelationReport, CorrelationRow, MachineMetric, Product, WorkOrderReading
from streams.products import CURRENCY_RE, MAX_STOCK, product_document


class MetricEventSchema(serializers.Serializer):
    id = serializers.IntegerField(min_value=0, help_text="Machine parameter id.")
    val = serializers.FloatField(help_text="Reading (finite number).")
    time = serializers.IntegerField(help_text="Epoch seconds, 2000-01-01 .. 2100-01-01.")


class WorkOrderEventSchema(serializers.Serializer):
    time = serializers.IntegerField(help_text="Epoch seconds, 2000-01-01 .. 2100-01-01.")
    product = serializers.IntegerField(min_value=0)
    production = serializers.FloatField(min_value=0, help_text="Cumulative output of the running order.")


class AcceptedSchema(serializers.Serializer):
    accepted = serializers.IntegerField()
    topic = serializers.CharField()


class ErrorSchema(serializers.Serializer):
    detail = serializers.CharField()


class RegistrationSchema(serializers.Serializer):
    productId = serializers.CharField(max_length=64)
    productName = serializers.CharField(max_length=255)
    productDescription = serializers.CharField(required=False, allow_blank=True)
    price = serializers.FloatField(min_value=0)
    currency = serializers.CharField(min_length=3, max_length=3, help_text="ISO 4217, e.g. BRL.")
    stockQuantity = serializers.IntegerField(min_value=0)
    category = serializers.CharField(required=False, allow_blank=True, max_length=120)


class MachineMetricSerializer(serializers.ModelSerializer):
    class Meta:
        model = MachineMetric
        fields = ["parameter_id", "value", "time", "received_at"]


class WorkOrderReadingSerializer(serializers.ModelSerializer):
    class Meta:
        model = WorkOrderReading
        fields = ["product", "production", "time", "received_at"]


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


class CorrelationRowSerializer(serializers.ModelSerializer):
    class Meta:
        model = CorrelationRow
        fields = ["product", "rank", "parameter_id", "correlation", "samples", "p_value",
                  "interval_correlation", "interval_samples", "interval_p_value",
                  "raw_correlation", "raw_samples", "raw_p_value"]


class CorrelationReportSerializer(serializers.ModelSerializer):
    requested_by = serializers.StringRelatedField()
    csv_url = serializers.SerializerMethodField()

    class Meta:
        model = CorrelationReport
        fields = ["id", "status", "trigger", "requested_by", "method", "parameters", "time_from", "time_to",
                  "input_time_min", "input_time_max", "metric_count", "workorder_count", "input_digest",
                  "duration_ms", "error", "created_at", "finished_at", "csv_url"]

    def get_csv_url(self, report: CorrelationReport) -> str | None:
        request = self.context.get("request")
        path = f"/api/reports/{report.pk}/csv/"
        return request.build_absolute_uri(path) if request else path


class CorrelationReportDetailSerializer(CorrelationReportSerializer):
    rows = CorrelationRowSerializer(many=True, read_only=True)

    class Meta(CorrelationReportSerializer.Meta):
        fields = CorrelationReportSerializer.Meta.fields + ["rows"]


class ReportRequestSerializer(serializers.Serializer):
    time_from = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=EPOCH_MAX,
                                         help_text="Epoch seconds.")
    time_to = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=EPOCH_MAX,
                                       help_text="Epoch seconds.")
    tolerance_seconds = serializers.IntegerField(required=False, min_value=0, max_value=INT32_MAX)
    direction = serializers.ChoiceField(choices=["backward", "nearest"], required=False)
    min_samples = serializers.IntegerField(required=False, min_value=3, max_value=INT32_MAX)
    rank_by = serializers.ChoiceField(choices=["interval", "raw"], required=False)

    def validate(self, attrs):
        if attrs.get("time_from") is not None and attrs.get("time_to") is not None \
                and attrs["time_from"] > attrs["time_to"]:
            raise serializers.ValidationError({"time_to": "must be >= time_from"})
        return attrs
