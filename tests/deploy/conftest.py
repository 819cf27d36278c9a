"""Fixtures for the monitoring kit (deploy/prometheus, deploy/grafana): Debian's `promtool` and
`prometheus` (`make monitoring-deps` installs them), and a running console whose /metrics has a
sample in every family it exports."""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.conftest import ROOT, ProcessRunner
from tests.streams.telemetry.test_asgi import request

PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
GRAFANA_DIR = ROOT / "deploy" / "grafana"


def tool(name: str) -> str:
    path = shutil.which(name)
    if not path:
        pytest.fail(f"{name} is missing: `make monitoring-deps` installs Debian's prometheus package")
    return path


@pytest.fixture
def promtool() -> str:
    return tool("promtool")


@dataclass
class LiveConsole:
    port: int
    token: str
    stuck_file: str  # the subject of its file_stuck alert

    def metrics(self) -> str:
        status, _, body = request(self.port, "GET", "/metrics", headers={"Authorization": f"Bearer {self.token}"})
        assert status == 200, body[:500]
        return body.decode()


def _seed_every_family() -> str:
    """Rows that give every family of /metrics a sample, and the console three alerts: a consumer
    whose only process went silent, a paused one, and a stuck file. Returns the stuck file's subject."""
    from django_celery_results.models import TaskResult

    from ingest.models import IngestedFile
    from quarantine.models import QuarantineRecord
    from streams.kafka.heartbeat import BATCH_BUCKETS
    from streams.kafka.registry import consumers
    from streams.models import ConsumerHeartbeat

    now = timezone.now()
    buckets = {str(b): (40 if b >= 0.1 else 0) + (60 if b >= 0.5 else 0) for b in BATCH_BUCKETS}
    for name in consumers():
        state, beat_at, reason = "running", now, ""
        if name == "products":
            beat_at = now - timedelta(minutes=3)  # said it was running, then nothing
        elif name == "orders":
            state, reason = "paused", "50 messages in a row were refused"
        ConsumerHeartbeat.objects.create(
            consumer=name, member=f"host-{name}:1", group_id=f"g-{name}", state=state, reason=reason,
            started_at=now - timedelta(minutes=10), beat_at=beat_at, messages=1000, applied=990,
            dead_lettered=10, refused=2, batches=100, batch_buckets=buckets, batch_seconds_sum=21.5)
    QuarantineRecord.objects.create(source="message", reason="bad", topic="t", partition=0, offset=1,
                                    consumer="telemetry")
    stuck = IngestedFile.objects.create(path="in/sales.csv", name="sales.csv", checksum="0" * 64, status="loading")
    IngestedFile.objects.filter(pk=stuck.pk).update(updated_at=now - timedelta(hours=2))
    IngestedFile.objects.create(path="in/ok.csv", name="ok.csv", checksum="1" * 64, status="loaded", rows_loaded=500)
    for task, status in (("streams.report_build", "SUCCESS"), ("streams.report_build", "FAILURE"),
                         ("ingest.process_file", "FAILURE")):
        TaskResult.objects.create(task_id=str(uuid.uuid4()), task_name=task, status=status)
    return f"{stuck.name}#{stuck.pk}"


@pytest.fixture
def live_console(processes: ProcessRunner, kafka) -> LiveConsole:
    """The web server as `make run` starts it, with METRICS_TOKEN set, over seeded tables and the
    test's own topics (every registered consumer has a lag of 0 on each)."""
    stuck_file = _seed_every_family()
    token = uuid.uuid4().hex
    _, port = processes.web(METRICS_TOKEN=token)
    request(port, "GET", "/healthz")  # a request Django counts: console_http_requests_total has a sample
    return LiveConsole(port=port, token=token, stuck_file=stuck_file)


def exported_names(text: str) -> set[str]:
    """The sample names of an exposition (`console_consumer_batch_seconds_bucket`, ...)."""
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}

