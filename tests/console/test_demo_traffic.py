"""`manage.py demo_traffic`: what `make run` feeds the pipelines with."""

import pytest
from django.core.management import call_command

from streams.models import Product


@pytest.mark.django_db
def test_one_round_feeds_every_input(kafka, settings, tmp_path):
    settings.INGEST_INBOX_DIR = tmp_path
    call_command("demo_traffic", "--rounds", "1", "--seed", "7")
    assert kafka.end_offsets("metrics") == 20
    assert kafka.end_offsets("workorders") == 2
    assert kafka.end_offsets("orders") >= 10
    assert kafka.end_offsets("sensor_data") == 5 and kafka.end_offsets("user_activity") == 5
    assert Product.objects.active().filter(product_id__in=[f"prod-{i}" for i in range(1, 6)]).count() == 5
    (csv,) = tmp_path.glob("demo-*.csv")
    assert csv.read_text().startswith('"ts","device","co"')
