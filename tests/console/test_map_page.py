"""The pipeline map's page (/admin/ops/map/, console/ops/topology.py and map_svg.py): every
registered consumer and every topic on it, live state from real heartbeats, lag samples
and quarantine records, no message contents, and only for `console.view_operations`."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.utils import timezone

from console.ops.map_svg import columns
from console.ops.topology import topology_graph
from console.tasks import sample_lag
from quarantine.models import QuarantineRecord
from streams.kafka.models import ConsumerHeartbeat
from streams.kafka.producer import Outbound, produce_and_wait
from streams.kafka.registry import consumers, sources
from streams.kafka.topics import topic_name
from .conftest import logged_in

pytestmark = pytest.mark.services


def _node(html: str, node_id: str) -> str:
    match = re.search(rf'<g class="map-node" data-node="{re.escape(node_id)}"[^>]*>', html)
    assert match, f"no node {node_id} on the map"
    return match.group(0)


def test_the_map_shows_every_consumer_topic_and_source_and_links_each_to_its_page(operator, kafka):
    response = logged_in(operator).get("/admin/ops/map/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="pipeline-map"' in html and 'data-url="/admin/ops/map/svg/"' in html
    for name, spec in consumers().items():
        _node(html, f"consumer:{name}")
        assert f'href="/admin/ops/consumers/{name}/"' in html
        assert f"group {spec.group_id()}" in html
    for logical in settings.KAFKA_TOPICS:
        _node(html, f"topic:{logical}")
        assert f'href="/admin/ops/topics/{topic_name(logical)}/"' in html
    for key, source in sources().items():
        _node(html, f"task:{key}" if source.kind == "task" else f"source:{key}")
    _node(html, "table:streams.ProductWindow")
    assert 'href="/admin/streams/productwindow/"' in html
    assert 'href="/admin/quarantine/quarantinerecord/?status__exact=open"' in html
    # The dashboard links to it.
    assert 'href="/admin/ops/map/"' in logged_in(operator).get("/admin/ops/dashboard/").content.decode()


def test_the_layout_reads_left_to_right_along_every_pipeline():
    graph = topology_graph()
    column = columns(graph)
    for edge in graph.edges:
        assert column[edge.source] < column[edge.target], f"{edge.source} -> {edge.target} goes backwards"
    assert column["consumer:orders"] < column["topic:processed_orders"] < column["consumer:order_windows"] \
        < column["topic:product_metrics"]
    assert column["consumer:files"] < column["task:ingest.process_file"]


def test_live_state_shows_on_the_nodes_and_message_contents_never_do(operator, kafka):
    produce_and_wait([Outbound(kafka.name("metrics"), {"id": 4, "val": 1.5, "time": 1624378100 + i, "note": "s3cr3t"})
                      for i in range(12)])
    sample_lag()
    now = timezone.now()
    ConsumerHeartbeat.objects.create(  # a process that crashed: what run_consumer leaves behind
        consumer="orders", member="host-a:41", group_id="console-orders", state="crashed",
        reason="crashed: OperationalError", started_at=now - timedelta(minutes=5), beat_at=now)
    for member, partitions in (("host-b:1", [[kafka.name("metrics"), 0]]), ("host-c:2", [])):
        ConsumerHeartbeat.objects.create(
            consumer="telemetry", member=member, group_id="console-telemetry",
            instance_id=f"console-telemetry-{member[-1]}", partitions=partitions, state="running",
            started_at=now, beat_at=now)
    QuarantineRecord.objects.create(source=QuarantineRecord.Source.MESSAGE, reason="invalid fields: val",
                                    consumer="standardize", topic=kafka.name("sensor_data"), partition=0, offset=3,
                                    payload=b'{"s3cr3t": 1}')

    html = logged_in(operator).get("/admin/ops/map/svg/").content.decode()
    assert html.startswith("<svg")
    assert 'data-state="failing" data-red="1"' in _node(html, "consumer:orders")
    telemetry = _node(html, "consumer:telemetry")
    assert 'data-state="running" data-red="0"' in telemetry
    assert html.count('class="map-member"') >= 2 and "1 · t-" in html and "host-b:1" in html  # each member listed
    assert "lag 12" in html  # the edge metrics -> telemetry carries the consumer's lag on it
    assert 'data-red="1"' in _node(html, "quarantine") and "1 open" in html
    assert 'data-red="0"' in _node(html, "consumer:standardize")
    assert "s3cr3t" not in html


def test_without_view_operations_the_map_is_forbidden(viewer):
    staff = get_user_model().objects.create_user("no-ops-map", is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(content_type__app_label="streams",
                                                          codename__startswith="view_"))
    client = logged_in(staff)
    assert client.get("/admin/ops/map/").status_code == 403
    assert client.get("/admin/ops/map/svg/").status_code == 403
    assert logged_in(viewer).get("/admin/ops/map/").status_code == 200

