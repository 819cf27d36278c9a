"""deploy/prometheus: the rules pass promtool, their unit tests pass, every alert the console
computes has a rule with the console's default threshold, and the scrape config example is valid."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT
from tests.deploy.conftest import PROMETHEUS_DIR

# promtool is an external binary, like the browser tests' Chromium: not in the fast tier.
pytestmark = pytest.mark.services

RULES = PROMETHEUS_DIR / "console.rules.yml"
UNIT_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))


def run(*args: str, cwd: Path = PROMETHEUS_DIR, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, input=stdin, capture_output=True, text=True, timeout=60)


def alert_rules() -> dict[str, dict]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"] if "alert" in rule}


def console_alert_names() -> set[str]:
    """The alerts console/ops/alerts.py computes, as its docstring lists them (`* `name`: ...`)."""
    from console.ops import alerts

    names = set(re.findall(r"^\* `(\w+)`:", alerts.__doc__ or "", re.M))
    assert len(names) >= 6, names
    return names


def setting_default(name: str) -> float:
    source = (ROOT / "console" / "settings" / "base.py").read_text()
    match = re.search(rf'^{name} = env\.\w+\("{name}", default=([\d_.]+)\)', source, re.M)
    assert match, f"{name} has no default in console/settings/base.py"
    return float(match.group(1).replace("_", ""))


def test_promtool_check_rules(promtool):
    result = run(promtool, "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_test_rules(promtool):
    assert UNIT_TESTS
    result = run(promtool, "test", "rules", *(str(p.relative_to(PROMETHEUS_DIR)) for p in UNIT_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(UNIT_TESTS), result.stdout


def test_promtool_check_config_on_the_scrape_config_example(promtool, tmp_path):
    for name in ("prometheus.yml", "console.rules.yml"):
        shutil.copy(PROMETHEUS_DIR / name, tmp_path / name)
    (tmp_path / "console-metrics-token").write_text("a-token\n")
    result = run(promtool, "check", "config", str(tmp_path / "prometheus.yml"), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    scrape = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())["scrape_configs"][0]
    assert scrape["job_name"] == "console" and scrape["metrics_path"] == "/metrics"
    assert scrape["authorization"]["type"] == "Bearer"


def test_every_console_alert_has_a_rule_that_fires_and_stays_quiet_in_unit_tests():
    by_console_name = {rule["labels"]["console_alert"]: alert for alert, rule in alert_rules().items()
                       if "console_alert" in rule.get("labels", {})}
    assert set(by_console_name) == console_alert_names()

    fired, quiet = set(), set()
    for path in UNIT_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fired if check.get("exp_alerts") else quiet).add(check["alertname"])
    every_alert = set(alert_rules())
    assert every_alert - fired == set(), "alerts no unit test fires"
    assert every_alert - quiet == set(), "alerts no unit test keeps quiet"


@pytest.mark.parametrize("alert", sorted(alert_rules()))
def test_thresholds_are_the_console_settings_defaults(alert):
    rule = alert_rules()[alert]
    setting = rule.get("annotations", {}).get("setting")
    if setting is None:
        assert "console_alert" not in rule["labels"] or alert == "ConsumerFailing"  # no threshold of its own
        return
    default = setting_default(setting)
    text = rule["expr"] + rule["annotations"]["summary"]
    if setting == "CONSUMER_HEARTBEAT_STALE_SECONDS":  # the console's verdict, with its own setting
        assert "console_alert_active" in rule["expr"]
    elif setting.endswith("_MINUTES"):
        assert f"{default:g}m" in rule["expr"] or f"{default:g} minutes" in text, (setting, default, text)
    else:
        assert re.search(rf">\s*{default:g}\b", rule["expr"]), (setting, default, rule["expr"])
