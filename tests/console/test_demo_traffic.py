"""`manage.py demo_traffic`: what `make run` feeds the pipelines with."""

import random
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command

from console.demo.traffic import STRAGGLER_MINUTES, order_and_reading_events
from streams.kafka.topics import topic_name

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


def test_now_and_then_an_order_is_minutes_late():
    """Under `make run` a late order shows up now and then, held on its final window."""
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    straggler_time = (now - timedelta(minutes=STRAGGLER_MINUTES)).isoformat()
    orders = [e.value for seed in range(60) for e in order_and_reading_events(int(now.timestamp()),
                                                                              random.Random(seed))
              if e.topic == topic_name("orders")]
    late = [o for o in orders if o.get("timestamp") == straggler_time]
    assert 0 < len(late) < len(orders) / 20  # a few, not a share of the traffic
