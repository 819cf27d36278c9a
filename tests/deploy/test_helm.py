"""deploy/helm/console: `helm lint`, `helm template` with the default values (the required secrets
given) and with every option on (ci/full-values.yaml), each manifest validated against Kubernetes'
schemas by kubernetes-validate, and what matters asserted on the rendered manifests: no default
secrets, a workload for every registered consumer, probes, and the same images and commands as the
Procfile and docker-compose.yml. helm is built from its Go module by `make helm-deps`."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from django.test import override_settings

from streams.kafka.registry import consumers
from streams.kafka.topics import topic_name
from tests.conftest import ROOT

# helm is an external binary, like promtool and the browser tests' Chromium: not in the fast tier.
pytestmark = pytest.mark.services

CHART = ROOT / "deploy" / "helm" / "console"
FULL_VALUES = CHART / "ci" / "full-values.yaml"
KUBERNETES_VERSION = "1.37.0"
# Kinds of custom resources, whose schemas come with their operators, not with Kubernetes.
CUSTOM_KINDS = {("keda.sh/v1alpha1", "ScaledObject"), ("monitoring.coreos.com/v1", "ServiceMonitor")}
REQUIRED = {
    "config.allowedHosts": "console.example.com",
    "config.kafkaBootstrapServers": "kafka:9092",
    "secrets.secretKey": "test-secret-key",
    "secrets.databaseUrl": "postgres://console:pw@postgres:5432/console",
    "secrets.redisUrl": "redis://:pw@redis:6379/0",
}
# Chart component -> the Procfile's process and docker-compose.yml's service.
FIXED = {"web": ("web", "web"), "worker": ("worker", "worker"), "beat": ("beat", "beat"),
         "watcher": ("watch", "watcher")}


@pytest.fixture(scope="module")
def helm() -> str:
    version = re.search(r"^HELM_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.M).group(1)
    path = Path.home() / ".cache" / "console-helm" / version / "helm"
    if not path.is_file():
        pytest.fail(f"{path} is missing: `make helm-deps` builds it from its Go module")
    return str(path)


def run_helm(helm: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([helm, *args], cwd=CHART, capture_output=True, text=True, timeout=120)


def sets(values: dict[str, str]) -> list[str]:
    """--set arguments, typed as on a command line ("false" is a boolean, "3" a number)."""
    return [arg for key, value in values.items() for arg in ("--set", f"{key}={value}".replace(",", "\\,"))]


def render(helm: str, *args: str, values: dict[str, str] | None = None) -> list[dict]:
    done = run_helm(helm, "template", "console", ".", *args, *sets(REQUIRED if values is None else values))
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def render_error(helm: str, *args: str, values: dict[str, str]) -> str:
    done = run_helm(helm, "template", "console", ".", *args, *sets(values))
    assert done.returncode != 0, "rendered although a required value is missing"
    return done.stderr


def by_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def workloads(docs: list[dict]) -> dict[str, dict]:
    return {**by_kind(docs, "Deployment"), **by_kind(docs, "StatefulSet")}


def container(workload: dict) -> dict:
    (only,) = workload["spec"]["template"]["spec"]["containers"]
    return only


def consumer_workload(name: str) -> str:
    return f"console-consumer-{name.replace('_', '-')}"


@pytest.fixture(scope="module")
def default_docs(helm: str) -> list[dict]:
    return render(helm)


@pytest.fixture(scope="module")
def full_docs(helm: str) -> list[dict]:
    return render(helm, "-f", str(FULL_VALUES), values={})


def test_helm_lint_passes_with_the_default_and_the_full_values(helm: str) -> None:
    for args in (sets(REQUIRED), ["-f", str(FULL_VALUES)]):
        done = run_helm(helm, "lint", "--strict", ".", *args)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "1 chart(s) linted, 0 chart(s) failed" in done.stdout


@pytest.mark.parametrize("which", ["default_docs", "full_docs"])
def test_every_manifest_is_valid_kubernetes(which: str, request) -> None:
    docs = request.getfixturevalue(which)
    custom = []
    for doc in docs:
        if (doc["apiVersion"], doc["kind"]) in CUSTOM_KINDS:
            custom.append(doc["kind"])
            with pytest.raises(kubernetes_validate.SchemaNotFoundError):  # checked field by field below
                kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
            continue
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)  # raises ValidationError
    kinds = {doc["kind"] for doc in docs}
    assert {"ConfigMap", "Secret", "Deployment", "StatefulSet", "Service", "Job"} <= kinds
    if which == "full_docs":
        assert {"Ingress", "PersistentVolumeClaim", "ScaledObject", "ServiceMonitor"} <= kinds
    else:
        assert not custom  # the defaults need no operator in the cluster


def test_the_validator_does_reject_a_wrong_manifest(default_docs: list[dict]) -> None:
    web = workloads(default_docs)["console-web"]
    broken = yaml.safe_load(yaml.safe_dump(web))
    container(broken)["readinessProbe"]["httpGet"]["port"] = {"name": "http"}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


# ------------------------------------------------------------------------- no default secrets
def test_values_hold_no_secret() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["secrets"] == {"existingSecret": "", "secretKey": "", "databaseUrl": "", "redisUrl": "",
                                 "metricsToken": "", "kafkaClientConfig": "", "extraEnv": {}}


@pytest.mark.parametrize("missing,env", [("secrets.secretKey", "SECRET_KEY"), ("secrets.databaseUrl", "DATABASE_URL"),
                                         ("secrets.redisUrl", "REDIS_URL")])
def test_render_fails_naming_a_missing_secret(helm: str, missing: str, env: str) -> None:
    error = render_error(helm, values={k: v for k, v in REQUIRED.items() if k != missing})
    assert f"{missing} ({env}) is required" in error
    assert "secrets.existingSecret" in error


def test_render_fails_without_the_required_settings(helm: str) -> None:
    assert "config.allowedHosts is required" in render_error(helm, values={})
    assert "not \"*\"" in render_error(helm, values={**REQUIRED, "config.allowedHosts": "*"})
    without_kafka = {k: v for k, v in REQUIRED.items() if k != "config.kafkaBootstrapServers"}
    assert "config.kafkaBootstrapServers is required" in render_error(helm, values=without_kafka)


def test_the_service_monitor_needs_a_metrics_token_and_plain_http(helm: str) -> None:
    on = {**REQUIRED, "serviceMonitor.enabled": "true"}
    assert "secrets.metricsToken (METRICS_TOKEN) is required" in render_error(helm, values=on)
    error = render_error(helm, values={**on, "secrets.metricsToken": "t"})
    assert "config.secureSslRedirect=false" in error


def test_the_secret_holds_what_was_given_and_every_process_reads_it(default_docs: list[dict]) -> None:
    secrets = by_kind(default_docs, "Secret")
    assert secrets["console"]["stringData"] == {"SECRET_KEY": REQUIRED["secrets.secretKey"],
                                                "DATABASE_URL": REQUIRED["secrets.databaseUrl"],
                                                "REDIS_URL": REQUIRED["secrets.redisUrl"]}
    assert secrets["console-migrate"]["stringData"] == secrets["console"]["stringData"]
    config = by_kind(default_docs, "ConfigMap")["console"]["data"]
    assert not {"SECRET_KEY", "DATABASE_URL", "REDIS_URL", "METRICS_TOKEN"} & set(config)
    for name, workload in workloads(default_docs).items():
        assert {"secretRef": {"name": "console"}} in container(workload)["envFrom"], name


def test_an_existing_secret_replaces_the_charts_own(helm: str) -> None:
    values = {k: v for k, v in REQUIRED.items() if not k.startswith("secrets.")}
    docs = render(helm, values={**values, "secrets.existingSecret": "console-prod"})
    assert by_kind(docs, "Secret") == {}
    job = by_kind(docs, "Job")["console-migrate"]
    for name, workload in {**workloads(docs), "job": job}.items():
        assert {"secretRef": {"name": "console-prod"}} in container(workload)["envFrom"], name


# ------------------------------------------------------------- consumers, probes, commands
def test_every_registered_consumer_has_a_workload_with_its_replicas(helm: str) -> None:
    registered = consumers()
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert sorted(values["consumers"]) == sorted(registered)
    docs = render(helm, values={**REQUIRED, "consumers.orders.replicas": "3", "consumerDefaults.replicas": "2"})
    statefulsets = by_kind(docs, "StatefulSet")
    assert sorted(statefulsets) == sorted(consumer_workload(name) for name in registered)
    for name, spec in registered.items():
        workload = statefulsets[consumer_workload(name)]
        assert workload["spec"]["replicas"] == (3 if name == "orders" else 2)
        assert container(workload)["command"][:4] == ["python", "manage.py", "run_consumer", name]
        # The topics KEDA measures are the consumer's own, by their default names.
        assert values["consumers"][name]["topics"] == [topic_name(t) for t in spec.topics], name


def test_each_consumer_replica_is_a_static_member_named_by_its_pod(default_docs: list[dict]) -> None:
    for name, workload in by_kind(default_docs, "StatefulSet").items():
        assert workload["spec"]["podManagementPolicy"] == "Parallel"
        env = {e["name"]: e for e in container(workload)["env"]}
        assert env["CONSUMER_INSTANCE_ID"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}, name


def test_probes_are_present(default_docs: list[dict]) -> None:
    found = workloads(default_docs)
    web = container(found["console-web"])
    assert web["livenessProbe"]["tcpSocket"]["port"] == "http"
    ready = web["readinessProbe"]["httpGet"]
    headers = {h["name"]: h["value"] for h in ready["httpHeaders"]}
    assert ready["port"] == "http" and ready["path"].startswith("/")
    assert headers == {"Host": "console.example.com", "X-Forwarded-Proto": "https"}
    worker = container(found["console-worker"])["livenessProbe"]["exec"]["command"]
    assert "inspect ping" in worker[-1]
    for name in consumers():
        consumer = container(found[consumer_workload(name)])
        command = consumer["command"]
        health_file = command[command.index("--healthcheck-file") + 1]
        for probe in ("livenessProbe", "readinessProbe"):
            assert health_file in consumer[probe]["exec"]["command"][-1], (name, probe)


def _procfile() -> dict[str, list[str]]:
    found = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, command = line.partition(":")
            found[name.strip()] = shlex.split(command)
    return found


def _from_procfile(argv: list[str], defaults: dict[str, str]) -> list[str]:
    """A Procfile command as the image runs it: the image's PATH instead of .venv/bin/, the chart's
    values (the Procfile's defaults) for ${VAR:-default}, and every address instead of loopback."""
    out = []
    for arg in argv:
        arg = arg.removeprefix(".venv/bin/")
        arg = re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: defaults.get(m.group(1), m.group(2)), arg)
        out.append(arg.replace("127.0.0.1:", "0.0.0.0:"))
    return out


def test_images_and_commands_match_the_procfile_and_compose(default_docs: list[dict]) -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    image = services["web"]["image"]
    procfile = _procfile()
    found = workloads(default_docs)
    for component, (process, service) in FIXED.items():
        chart = container(found[f"console-{component}"])
        assert chart["image"] == image == services[service]["image"], component
        assert chart["command"] == _from_procfile(procfile[process], {}), component
        compose_command = services[service]["command"]
        assert chart["command"][:len(compose_command)] == compose_command, component
        assert services[service]["environment"]["DJANGO_SETTINGS_MODULE"] == \
            by_kind(default_docs, "ConfigMap")["console"]["data"]["DJANGO_SETTINGS_MODULE"]
    assert set(procfile) == {process for process, _ in FIXED.values()}
    for name in consumers():
        chart = container(found[consumer_workload(name)])
        service = services[f"consumer-{name.replace('_', '-')}"]
        assert chart["image"] == service["image"] == image, name
        assert chart["command"] == service["command"], name
    job = container(by_kind(default_docs, "Job")["console-migrate"])
    assert job["image"] == image
    steps = [step.strip() for step in job["command"][-1].split("&&")]
    init_steps = [step.strip() for step in services["init"]["command"][-1].split("&&")]
    assert steps == [s for s in init_steps if "collectstatic" not in s]


def test_the_migration_job_is_a_hook_before_install_and_upgrade(default_docs: list[dict]) -> None:
    job = by_kind(default_docs, "Job")["console-migrate"]
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    secret = by_kind(default_docs, "Secret")["console-migrate"]
    assert int(secret["metadata"]["annotations"]["helm.sh/hook-weight"]) < \
        int(job["metadata"]["annotations"]["helm.sh/hook-weight"])
    env = {e["name"]: e["value"] for e in container(job)["env"]}
    assert env == by_kind(default_docs, "ConfigMap")["console"]["data"]


# --------------------------------------------------------------- KEDA and the ServiceMonitor
def test_keda_scales_each_consumer_on_its_groups_lag(full_docs: list[dict]) -> None:
    full = yaml.safe_load(FULL_VALUES.read_text())
    scaled = by_kind(full_docs, "ScaledObject")
    statefulsets = by_kind(full_docs, "StatefulSet")
    with override_settings(CONSUMER_GROUP_PREFIX=full["config"]["consumerGroupPrefix"]):
        groups = {name: spec.group_id() for name, spec in consumers().items()}
    for name, spec in consumers().items():
        workload = consumer_workload(name)
        if name == "products":  # its own keda.enabled: false
            assert workload not in scaled and statefulsets[workload]["spec"]["replicas"] == 2
            continue
        obj = scaled[workload]["spec"]
        assert "replicas" not in statefulsets[workload]["spec"]  # KEDA owns the count
        assert obj["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": workload}
        assert [t["metadata"]["topic"] for t in obj["triggers"]] == [topic_name(t) for t in spec.topics]
        for trigger in obj["triggers"]:
            meta = trigger["metadata"]
            assert trigger["type"] == "kafka" and trigger["authenticationRef"] == {"name": "kafka-sasl"}
            assert meta["consumerGroup"] == groups[name]
            assert meta["bootstrapServers"] == full["config"]["kafkaBootstrapServers"]
            assert meta["lagThreshold"] == ("5000" if name == "orders" else "2000")
        assert obj["maxReplicaCount"] == (12 if name == "orders" else 6)


def test_the_service_monitor_scrapes_metrics_with_the_token(full_docs: list[dict]) -> None:
    (monitor,) = by_kind(full_docs, "ServiceMonitor").values()
    service = by_kind(full_docs, "Service")["console-web"]
    assert monitor["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]
    assert service["metadata"]["labels"][monitor["spec"]["jobLabel"]] == "console"  # up{job="console"}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == service["spec"]["ports"][0]["name"] and endpoint["path"] == "/metrics"
    assert endpoint["authorization"] == {"type": "Bearer", "credentials": {"name": "console", "key": "METRICS_TOKEN"}}
    assert by_kind(full_docs, "Secret")["console"]["stringData"]["METRICS_TOKEN"]
    # Prometheus asks each pod by its address, so the pod's address is an allowed host.
    web = {e["name"]: e for e in container(workloads(full_docs)["console-web"])["env"]}
    assert web["POD_IP"]["valueFrom"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    assert web["ALLOWED_HOSTS"]["value"].endswith(",$(POD_IP)")


def test_extra_settings_land_in_the_configmap_and_extra_secrets_in_the_secret(full_docs: list[dict]) -> None:
    config = by_kind(full_docs, "ConfigMap")["console"]["data"]
    secret = by_kind(full_docs, "Secret")["console"]["stringData"]
    assert config["OIDC_ISSUER"] == "https://login.example.com/realms/data" and config["KAFKA_REPLICATION_FACTOR"] == "3"
    assert secret["OIDC_CLIENT_SECRET"] and secret["KAFKA_CLIENT_CONFIG"].startswith("security.protocol=")
    assert not set(config) & set(secret)
