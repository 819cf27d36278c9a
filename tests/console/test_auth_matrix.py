"""The auth matrix: every route, every admin action, every role, one table.

The routes come from the URL resolver (every pattern, the admin's and the DRF
router's included), not from a list kept here, and the admin actions from
each registered ModelAdmin; the expected outcomes come from the table in
docs/SECURITY.md (between the `auth-matrix` markers), the one place they are
written down. A route or action without a row fails, and so does a row
whose route is gone.

Each (route, method) is tried by five roles: anonymous; viewer (staff with
the view permissions of the pipelines' tables, nothing else); operator (staff
in the `operators` group); service (the token of an account in
`telemetry-publishers`, as `create_service_token` makes it); superuser.
Outcomes: `ok` (the request got past authentication and permissions: 2xx,
3xx, or a 400/404/409 about the request itself), `401`, `403`, `405`, and
`login` (the admin's redirect to its login page). Writes are sent with a body
that changes nothing (`{"dry_run": true}` to the API, an empty form to the
admin), and the objects acted on are closed or unknown, so no role's request
publishes or deletes anything.

Set AUTH_MATRIX_OBSERVED=path to write the observed table there (markdown),
to review and paste into docs/SECURITY.md after a change of routes.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.test import Client, RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.authtoken.models import Token

from quarantine.models import QuarantineRecord
from streams.models import CorrelationReport, Product

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "SECURITY.md"
ROLES = ["anonymous", "viewer", "operator", "service", "superuser"]
START, END = "<!-- auth-matrix:start -->", "<!-- auth-matrix:end -->"

# Methods tried per kind of route. DRF viewsets: the methods their router maps.
ADMIN_WRITE_SUFFIXES = ("_add", "_change", "_delete", "_build", "_release", "_reprocess", "_discard",
                        ":password_change", ":login", ":logout")
# Pages outside the admin's model URLs that take a form (the message browser's actions).
OTHER_POST = {"rest_framework:login", "rest_framework:logout", "ops-produce", "ops-redrive"}


# ----------------------------------------------------------------- the routes


def walk(patterns, prefix: str = "", namespace: str | None = None):
    """(route pattern, name, callback) of every URL pattern, depth first."""
    for entry in patterns:
        if isinstance(entry, URLResolver):
            inner = namespace
            if entry.namespace:
                inner = f"{namespace}:{entry.namespace}" if namespace else entry.namespace
            yield from walk(entry.url_patterns, prefix + str(entry.pattern), inner)
        elif isinstance(entry, URLPattern):
            name = f"{namespace}:{entry.name}" if namespace and entry.name else entry.name
            yield prefix + str(entry.pattern), name, entry.callback


def route_key(pattern: str, name: str | None) -> str:
    """A route's row: its name, or its pattern when it has none."""
    return name or pattern


def methods_of(name: str | None, callback) -> list[str]:
    actions = getattr(callback, "actions", None)
    if actions:
        # HEAD is GET without the body (Django and DRF answer it with the GET handler): not a row of its own.
        return sorted(m.upper() for m in actions if m != "head")
    if name and (name.endswith(ADMIN_WRITE_SUFFIXES) or name in OTHER_POST):
        return ["GET", "POST"]
    return ["GET"]


def concrete_path(pattern: str, samples: dict[str, str]) -> str:
    """The pattern with every parameter filled: a sample object's id where there is one."""
    path = pattern.replace("^", "").replace("$", "").replace("\\.", ".").replace("/?", "/")
    model = _admin_model(pattern)
    object_id = samples.get(model or "", "999999")

    def fill(match: re.Match) -> str:
        param = match.group("name")
        return {
            "format": "json", "product_id": samples["product"], "order_id": samples["processedorder"],
            "name": "no-such-topic", "url": "no-such-page/", "app_label": "streams",
            "content_type_id": "1", "id": samples.get("user", "1"),
        }.get(param, object_id if model else samples.get(_api_model(pattern), "999999"))

    path = path.replace("<drf_format_suffix:format>", ".json")
    path = re.sub(r"\(\?P<(?P<name>\w+)>[^)]*\)", fill, path)  # regex groups first: they hold <name> too
    path = re.sub(r"<(?:\w+:)?(?P<name>\w+)>", fill, path)
    return "/" + path.replace("//", "/")


def _admin_model(pattern: str) -> str | None:
    match = re.match(r"admin/(\w+)/(\w+)/", pattern)
    return match.group(2) if match else None


_API_MODELS = {"reports": "correlationreport", "quarantine/records": "quarantinerecord", "files": "ingestedfile",
               "order-windows": "productwindow", "sensor-readings": "sensorreading",
               "activity-events": "activityevent", "sensor-aggregates": "sensoraggregate"}


def _api_model(pattern: str) -> str:
    for prefix, model in _API_MODELS.items():
        if f"^{prefix}/" in pattern:
            return f"api:{model}"
    return ""


# ---------------------------------------------------------------- the table


def documented_table() -> dict[tuple[str, str], dict[str, str]]:
    text = DOC.read_text()
    assert START in text and END in text, f"{DOC} has no auth-matrix section"
    table: dict[tuple[str, str], dict[str, str]] = {}
    for line in text.split(START, 1)[1].split(END, 1)[0].splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) != 2 + len(ROLES) or cells[0] in ("route", "") or set(cells[0]) <= {"-", ":"}:
            continue
        key = (cells[0], cells[1])
        assert key not in table, f"two rows for {key}"
        table[key] = dict(zip(ROLES, cells[2:]))
    return table


def markdown(observed: dict[tuple[str, str], dict[str, str]]) -> str:
    lines = ["| route | method | " + " | ".join(ROLES) + " |", "|---|---|" + "---|" * len(ROLES)]
    for (route, method), outcomes in sorted(observed.items()):
        lines.append(f"| `{route}` | {method} | " + " | ".join(outcomes[r] for r in ROLES) + " |")
    return "\n".join(lines)


# ------------------------------------------------------------------ the roles


@pytest.fixture
def roles(db):
    User = get_user_model()
    viewer = User.objects.create_user("matrix-viewer", is_staff=True)
    viewer.user_permissions.add(*Permission.objects.filter(
        content_type__app_label__in=["streams", "ingest", "quarantine"], codename__startswith="view_"))
    operator = User.objects.create_user("matrix-operator", is_staff=True)
    operator.groups.add(Group.objects.get(name="operators"))
    service = User.objects.create_user("matrix-service")
    service.groups.add(Group.objects.get(name="telemetry-publishers"))
    superuser = User.objects.create_superuser("matrix-root", "root@example.com", "matrix-pass-1")
    return {"viewer": viewer, "operator": operator, "superuser": superuser,
            "service": Token.objects.create(user=service).key}


@pytest.fixture
def samples(db) -> dict[str, str]:
    """One object of the models whose pages take an id (closed or harmless to act on)."""
    from tests.quarantine.conftest import dead_letter

    product = Product.objects.create(product_id="matrix-p", name="P", price=1, currency="BRL", stock_quantity=1,
                                     availability_timestamp=datetime(2026, 1, 1, tzinfo=UTC))
    report = CorrelationReport.objects.create(trigger=CorrelationReport.Trigger.SHELL)
    record = dead_letter("matrix-topic", {"id": "ten"}, consumer="matrix")
    record.status = QuarantineRecord.Status.DISCARDED  # closed: every action is refused, nothing re-driven
    record.save(update_fields=["status"])
    return {"product": product.product_id, "processedorder": "no-such-order", "correlationreport": str(report.pk),
            "api:correlationreport": str(report.pk), "quarantinerecord": str(record.pk),
            "api:quarantinerecord": str(record.pk), "user": "1"}


def client_for(role: str, roles) -> Client:
    client = Client()
    if role == "service":
        client.defaults["HTTP_AUTHORIZATION"] = f"Token {roles['service']}"
    elif role != "anonymous":
        client.force_login(roles[role])
    return client


def outcome(response) -> str:
    code = response.status_code
    if code in (301, 302) and "/admin/login/" in response.get("Location", ""):
        return "login"
    if code in (401, 403, 405):
        return str(code)
    if code >= 500 and code != 503:
        return str(code)  # a bug: no row says 500, so the test fails naming the route
    return "ok"  # 503 too: a dependency's answer (/healthz with one down), not an auth decision


def call(client: Client, method: str, path: str):
    client.raise_request_exception = False  # a view's exception is a 500 in the table, not a crash here
    if not path.startswith("/admin/") and method in ("POST", "PUT", "PATCH"):
        return client.generic(method, path, '{"dry_run": true}', content_type="application/json")
    if method == "POST":
        return client.post(path, {})
    return client.generic(method, path)


# ------------------------------------------------------------------ the test


def admin_action_outcomes(roles) -> dict[tuple[str, str], dict[str, str]]:
    """Who may run each admin action: the actions Django offers that user (it runs no other)."""
    factory = RequestFactory()
    observed = {}
    for model, model_admin in admin.site._registry.items():
        root = factory.get("/admin/")
        root.user = roles["superuser"]
        for name in model_admin.get_actions(root):
            row = {"anonymous": "login", "service": "login"}
            for role in ("viewer", "operator", "superuser"):
                request = factory.get("/admin/")
                request.user = get_user_model().objects.get(pk=roles[role].pk)
                # The changelist (which runs actions) needs view or change; then the action's own permissions.
                allowed = model_admin.has_view_or_change_permission(request) and \
                    name in model_admin.get_actions(request)
                row[role] = "ok" if allowed else "403"
            observed[(f"action {model._meta.app_label}.{model._meta.model_name}.{name}", "POST")] = row
    return observed


def test_every_route_and_action_answers_only_to_whom_the_table_says(roles, samples, settings, kafka):
    settings.ALLOWED_HOSTS = ["testserver"]
    settings.HEALTHCHECK_TIMEOUT_SECONDS = 1.0
    table = documented_table()
    observed: dict[tuple[str, str], dict[str, str]] = {}
    mismatches = []
    for pattern, name, callback in walk(get_resolver().url_patterns):
        key = route_key(pattern, name)
        path = concrete_path(pattern, samples)
        for method in methods_of(name, callback):
            row = {}
            for role in ROLES:
                # A fresh client per request: logout routes end the session they are sent in.
                row[role] = outcome(call(client_for(role, roles), method, path))
            if (key, method) in observed and observed[(key, method)] != row:
                mismatches.append(f"{key} {method}: {path} answers {row}, another pattern {observed[(key, method)]}")
            observed[(key, method)] = row
    observed.update(admin_action_outcomes(roles))

    if os.environ.get("AUTH_MATRIX_OBSERVED"):
        Path(os.environ["AUTH_MATRIX_OBSERVED"]).write_text(markdown(observed) + "\n")
    missing = sorted(set(observed) - set(table))
    gone = sorted(set(table) - set(observed))
    for key in sorted(set(observed) & set(table)):
        if observed[key] != table[key]:
            mismatches.append(f"{key[0]} {key[1]}: expected {table[key]}, got {observed[key]}")
    assert not missing, f"routes or actions without a row in {DOC.name}: {missing}"
    assert not gone, f"rows in {DOC.name} for routes that no longer exist: {gone}"
    assert not mismatches, "\n".join(mismatches)


def test_the_table_keeps_the_rules(roles):
    """Whatever the rows say, some things hold for every one of them."""
    table = documented_table()
    # /metrics answers by address or METRICS_TOKEN, not by user (tests/console/test_metrics.py); the test client is loopback.
    public = {"healthz", "metrics", "rest_framework:login", "rest_framework:logout", "admin:login", "admin:logout",
              "oidc_authentication_init", "oidc_authentication_callback"}  # single sign-on's start and callback
    description = {"api-root", "schema", "swagger-ui"}  # what the API offers, no data: any login
    service_scope = {("metric-fast", "POST"), ("workorder-fast", "POST"), ("metric-list", "POST"),
                     ("workorder-list", "POST"), ("product-register", "POST")}
    for (route, method), row in table.items():
        if route not in public:
            assert row["anonymous"] in ("401", "403", "login", "405"), (route, method)
        if (route, method) not in service_scope and route not in public | description:
            assert row["service"] in ("401", "403", "login", "405"), (route, method)
        if method != "GET" and not route.startswith("action "):
            assert row["viewer"] != "ok" or route in public or route == "admin:password_change", (route, method)
        if route.startswith(("ops-topic-messages", "ops-message", "ops-produce", "ops-redrive")):
            assert row["viewer"] == "403"
