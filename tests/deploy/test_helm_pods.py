"""The chart's pods as rendered, run here against the real services: the web container's command
and settings (the production profile) answer its readiness probe and the ServiceMonitor's scrape,
and a consumer container's probes follow the file its command writes. Only what a cluster adds is
changed: the listening address (127.0.0.1 and a free port), the services' addresses, and the pod's
address (127.0.0.1)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, ProcessRunner, wait_until
from tests.deploy.test_helm import REQUIRED, by_kind, container, helm, render  # noqa: F401 (helm: fixture)
from tests.streams.telemetry.test_asgi import request

TOKEN = "scrape-token-for-the-test"


# The test's own (ProcessRunner.env): its services, and its namespace's groups and topics.
CLUSTER_SETTINGS = ("DATABASE_URL", "REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS", "CONSUMER_GROUP_PREFIX")


def pod_env(docs: list[dict], workload: str, files: Path, **cluster: str) -> dict[str, str]:
    """The environment Kubernetes would give the container: the ConfigMap, the Secret, then its own
    env (with $(VAR) expanded), less what points at the cluster's services and volume."""
    env = dict(by_kind(docs, "ConfigMap")["console"]["data"])
    env.update(by_kind(docs, "Secret")["console"]["stringData"])
    for name in CLUSTER_SETTINGS:
        env.pop(name)
    for name in ("INGEST_INBOX_DIR", "INGEST_QUARANTINE_DIR"):  # /data/..., the pod's volume
        env[name] = str(files / env[name].removeprefix("/data/"))
    found = {**by_kind(docs, "Deployment"), **by_kind(docs, "StatefulSet")}
    for item in container(found[workload]).get("env", []):
        value = cluster.get(item["name"], item.get("value", ""))
        for name, known in env.items():
            value = value.replace(f"$({name})", known)
        env[item["name"]] = value
    return env


def start_web(processes: ProcessRunner, docs: list[dict]) -> int:
    web = container(by_kind(docs, "Deployment")["console-web"])
    command = list(web["command"])
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert command[command.index("--bind") + 1] == "0.0.0.0:8000"
    command[command.index("--bind") + 1] = f"127.0.0.1:{port}"
    command[0] = str(Path(sys.executable).parent / command[0])  # the image's PATH
    log = processes.tmp_path / f"web-{port}.log"
    proc = subprocess.Popen(command, cwd=ROOT, env=processes.env(**pod_env(docs, "console-web", processes.tmp_path, POD_IP="127.0.0.1")),
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    proc.log_path = log  # type: ignore[attr-defined]
    processes.procs.append(proc)

    def listening() -> bool:
        assert proc.poll() is None, log.read_text(errors="replace")
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0  # what the liveness probe asks

    wait_until(listening, timeout=60)
    return port


def probe(port: int, docs: list[dict]) -> tuple[int, bytes]:
    ready = container(by_kind(docs, "Deployment")["console-web"])["readinessProbe"]["httpGet"]
    headers = {h["name"]: h["value"] for h in ready["httpHeaders"]}
    status, _, body = request(port, "GET", ready["path"], headers=headers)
    return status, body


def test_the_web_pod_answers_its_probes_and_the_scrape(helm: str, processes: ProcessRunner) -> None:  # noqa: F811
    # The defaults: Django redirects plain HTTP, so the scrape cannot work (the chart refuses the pair).
    docs = render(helm, values={**REQUIRED, "web.workers": "1", "secrets.metricsToken": TOKEN})
    port = start_web(processes, docs)
    status, body = probe(port, docs)
    assert status == 200, body[:300]
    assert b"body" in body  # the admin's stylesheet, served by the application itself
    status, headers, _ = request(port, "GET", "/metrics", headers={"Authorization": f"Bearer {TOKEN}",
                                                                   "Host": "console.example.com"})
    assert status == 301 and headers["location"].startswith("https://")

    # With the ServiceMonitor: a plain-HTTP scrape of the pod's address, with the token.
    docs = render(helm, values={**REQUIRED, "web.workers": "1", "secrets.metricsToken": TOKEN,
                                "serviceMonitor.enabled": "true", "config.secureSslRedirect": "false"})
    port = start_web(processes, docs)
    assert probe(port, docs)[0] == 200
    scrape = {"Authorization": f"Bearer {TOKEN}"}  # Host: 127.0.0.1:<port>, the pod's address
    status, _, body = request(port, "GET", "/metrics", headers=scrape)
    assert status == 200, body[:300]
    assert b"console_consumer_running" in body
    assert request(port, "GET", "/metrics", headers={"Authorization": "Bearer wrong"})[0] in (401, 403)


def run_probe(command: list[str]) -> int:
    return subprocess.run(command, timeout=30).returncode


def test_a_consumer_pods_probes_follow_its_health_file(helm: str, processes: ProcessRunner,  # noqa: F811
                                                      tmp_path: Path) -> None:
    docs = render(helm)
    workload = "console-consumer-telemetry"
    consumer = container(by_kind(docs, "StatefulSet")[workload])
    health = str(tmp_path / "healthy")  # /tmp/healthy is the pod's own; this machine's is shared

    def here(argv: list[str]) -> list[str]:
        return [arg.replace("/tmp/healthy", health) for arg in argv]

    liveness = here(consumer["livenessProbe"]["exec"]["command"])
    readiness = here(consumer["readinessProbe"]["exec"]["command"])
    assert run_probe(liveness) != 0 and run_probe(readiness) != 0  # not started: no file

    command = here(consumer["command"])
    assert command[:2] == ["python", "manage.py"]
    env = pod_env(docs, workload, tmp_path, CONSUMER_INSTANCE_ID=f"{workload}-0")  # the pod's name
    proc = processes.start(*command[2:], log_name="consumer-telemetry", **env)
    wait_until(lambda: proc.poll() is None and os.path.exists(health), timeout=90)
    wait_until(lambda: run_probe(readiness) == 0, timeout=30)
    assert run_probe(liveness) == 0
    assert proc.poll() is None, processes.log(proc)

    processes.stop(proc)
    stale = time.time() - 120  # a loop silent for two minutes
    os.utime(health, (stale, stale))
    assert run_probe(readiness) != 0 and run_probe(liveness) != 0
