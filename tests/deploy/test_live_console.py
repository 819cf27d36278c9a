"""The monitoring kit against a running console: `promtool check metrics` on a live /metrics, and
a real Prometheus (Debian's binary, on 127.0.0.1, a free port, a temporary data directory)
that scrapes it with the shipped scrape config and rules: every query of the Grafana dashboard
parses and names only metrics the console exports, every rule evaluates, and the alerts
Prometheus raises are the ones the console computes."""

from __future__ import annotations

import http.client
import json
import re
import socket
import subprocess
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import wait_until
from tests.deploy.conftest import GRAFANA_DIR, PROMETHEUS_DIR, LiveConsole, exported_names, tool

DASHBOARD = GRAFANA_DIR / "console-dashboard.json"
# Grafana's variables, as Grafana would put them for a 1-s scrape interval.
GRAFANA_VARIABLES = {"$__rate_interval": "15s", "$__interval": "1s", "$__range": "5m"}
# Queries that select an event the test does not cause: they must parse and name exported
# metrics, but may answer no series.
MAY_BE_EMPTY = {"Server errors (per second)"}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "and", "or",
                "unless", "inf", "nan"}


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, expression) of every query of the dashboard, rows' panels included."""
    def panels(items: list[dict]) -> Iterator[dict]:
        for panel in items:
            yield panel
            yield from panels(panel.get("panels", []))

    dashboard = json.loads(DASHBOARD.read_text())
    return [(panel["title"], target["expr"]) for panel in panels(dashboard["panels"])
            for target in panel.get("targets", [])]


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects: what is left once strings, label matchers, ranges,
    grouping lists, function calls and keywords are taken out."""
    rest = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    rest = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", rest)
    rest = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", rest)
    names = set()
    for match in re.finditer(r"(?<![\w$.])([a-zA-Z_:][\w:]*)(\s*\()?", rest):
        if not match.group(2) and match.group(1).lower() not in PROMQL_WORDS:
            names.add(match.group(1))
    return names


def test_metric_names_are_read_from_expressions():
    assert metric_names('sum by (consumer, le) (rate(console_x_bucket{a=~"b|c"}[$__rate_interval])) '
                        '> on (consumer) group_left console_y offset 10m and up') == {
        "console_x_bucket", "console_y", "up"}


def test_promtool_check_metrics_accepts_a_live_scrape(live_console: LiveConsole):
    text = live_console.metrics()
    result = subprocess.run([tool("promtool"), "check", "metrics"], input=text, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0 and not result.stdout.strip() and not result.stderr.strip(), (
        result.stdout + result.stderr)
    assert "console_alert_active" in exported_names(text)


class Prometheus:
    def __init__(self, port: int) -> None:
        self.port = port

    def get(self, path: str, **params: str) -> tuple[int, dict]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", f"{path}?{urllib.parse.urlencode(params)}" if params else path)
            response = conn.getresponse()
            body = response.read()
            return response.status, json.loads(body) if body.startswith(b"{") else {"raw": body.decode()}
        finally:
            conn.close()

    def query(self, expr: str) -> list[dict]:
        status, body = self.get("/api/v1/query", query=expr)
        assert status == 200 and body.get("status") == "success", f"{expr}\n{status} {body}"
        return body["data"]["result"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def prometheus(live_console: LiveConsole, tmp_path: Path) -> Iterator[Prometheus]:
    """Prometheus with the shipped scrape config (its target, intervals and Alertmanager changed
    for the test) and rules, scraping the live console every second with its bearer token."""
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config.pop("alerting")
    config["rule_files"] = [str(PROMETHEUS_DIR / name) for name in config["rule_files"]]
    scrape = config["scrape_configs"][0]
    scrape["scrape_timeout"] = "1s"
    scrape["static_configs"] = [{"targets": [f"127.0.0.1:{live_console.port}"]}]
    (tmp_path / "console-metrics-token").write_text(live_console.token)
    scrape["authorization"]["credentials_file"] = str(tmp_path / "console-metrics-token")
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))

    port = free_port()
    log = open(tmp_path / "prometheus.log", "wb")
    proc = subprocess.Popen(
        [tool("prometheus"), f"--config.file={tmp_path / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
         "--storage.tsdb.retention.time=1h", "--log.level=warn"],
        stdout=log, stderr=subprocess.STDOUT)
    server = Prometheus(port)

    def ready() -> bool:
        assert proc.poll() is None, (tmp_path / "prometheus.log").read_text()
        try:
            return server.get("/-/ready")[0] == 200
        except OSError:
            return False

    try:
        wait_until(ready, timeout=30, interval=0.1, message="Prometheus to be ready")
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_the_dashboard_and_the_rules_against_a_real_prometheus(live_console: LiveConsole, prometheus: Prometheus):
    # Three scrapes with the bearer token, so that a rate over the dashboard's window has two samples.
    wait_until(lambda: prometheus.query('count_over_time(up{job="console"}[1m]) >= 3 and up{job="console"} == 1'),
               timeout=30, interval=0.2, message="three good scrapes of the console")
    exported = exported_names(live_console.metrics())
    status, body = prometheus.get("/api/v1/label/__name__/values")
    assert status == 200, body
    scraped = set(body["data"])

    queries = dashboard_queries()
    assert len(queries) >= 40
    problems = []
    for title, expr in queries:
        for name, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(name, value)
        status, body = prometheus.get("/api/v1/query", query=expr)
        if status != 200 or body.get("status") != "success":
            problems.append(f"{title}: does not run: {body.get('error', body)}\n  {expr}")
            continue
        missing = metric_names(expr) - (exported & scraped)
        if missing:
            problems.append(f"{title}: the console does not export {sorted(missing)}\n  {expr}")
        elif not body["data"]["result"] and title not in MAY_BE_EMPTY:
            problems.append(f"{title}: no series\n  {expr}")
    assert not problems, "\n".join(problems)

    # Every rule evaluates without an error (a many-to-many match, a bad range) once it has run.
    def rules_evaluated() -> list[dict]:
        rules = [rule for group in prometheus.get("/api/v1/rules")[1]["data"]["groups"] for rule in group["rules"]]
        return rules if all(rule.get("lastEvaluation", "").startswith("2") and
                            not rule["lastEvaluation"].startswith("0001") for rule in rules) else []

    rules = wait_until(rules_evaluated, timeout=30, interval=0.2, message="every rule to be evaluated")
    assert len(rules) == 19
    assert [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"] == []

    # The alerts Prometheus raises from the console's series are the alerts the console computes.
    console_alerts = {(m.group(1), m.group(2)) for m in re.finditer(
        r'^console_alert_active\{alert="(\w+)",subject="([^"]*)"\} 1\.0$', live_console.metrics(), re.M)}
    assert console_alerts == {("consumer_heartbeat_missing", "products"), ("consumer_failing", "orders"),
                              ("file_stuck", live_console.stuck_file)}

    def raised() -> set[tuple[str, str]]:
        alerts = prometheus.get("/api/v1/alerts")[1]["data"]["alerts"]
        return {(a["labels"]["console_alert"], a["labels"].get("consumer") or a["labels"].get("file"))
                for a in alerts if "console_alert" in a["labels"]}

    wait_until(lambda: raised() == console_alerts, timeout=15, interval=0.2,
               message=f"Prometheus to raise {console_alerts}")
