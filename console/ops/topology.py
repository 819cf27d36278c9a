"""The pipeline map's graph: every pipeline's sources, topics, consumers (with their group
and members), Celery tasks, tables, dead-letter topics and quarantine, and the edges
between them, derived from what the code declares, never kept by hand; then the live
state of each node and edge. Drawn by console/ops/map_svg.py for the map page
(console/ops/pages.py `pipeline_map`).

What the code declares: each consumer's ConsumerSpec (its `topics`, `writes`, `produces`,
`queues` and `dead_letter_topic`, streams/kafka/registry.py) and each source's Source
(`register_source()` next to the endpoint, watcher, generator or Celery task that
publishes or writes). tests/console/test_map_declared.py fails when a consumer does
anything it has not declared, or a module publishes without declaring a source.

The live state comes from the admin index's one data source (dashboard.dashboard_overview:
heartbeats, lag samples, alerts, open quarantine, Celery's queues) plus the newest lag
sample per partition and the topics' rates (console/ops/lag_history.py) and failed tasks
per name: bounded aggregate queries, nothing asks the broker for more than the
dashboard does. Message contents are never read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib import import_module

from django.apps import apps
from django.conf import settings
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

QUARANTINE_MODEL = "quarantine.QuarantineRecord"
# The apps whose management commands may declare sources (generators, the watcher).
_APPS_WITH_COMMANDS = ("console", "ingest", "quarantine", "streams")


@dataclass
class Node:
    id: str
    kind: str  # source, topic, consumer, task, table, quarantine
    label: str
    detail: str = ""  # the second line: kind of source, Kafka name, group, model
    link: str = ""
    order: int = 0  # the pipeline's place (Pipeline.order): keeps a pipeline's nodes together
    lines: list[str] = field(default_factory=list)  # live figures, one per line
    members: list[tuple[str, bool, str]] = field(default_factory=list)  # (text, red, tooltip) per member
    state: str = ""  # running, failing, stopped, not started (consumers), open (quarantine)
    red: bool = False
    why: list[str] = field(default_factory=list)  # what makes it red (its tooltip)


@dataclass
class Edge:
    source: str
    target: str
    kind: str = "data"  # data, dead_letter, queue, write
    label: str = ""
    red: bool = False


@dataclass
class Graph:
    nodes: dict[str, Node]
    edges: list[Edge]
    at: datetime | None = None

    def add(self, node: Node) -> Node:
        known = self.nodes.setdefault(node.id, node)
        known.order = min(known.order, node.order)
        return known

    def connect(self, source: str, target: str, kind: str = "data") -> None:
        if not any(e.source == source and e.target == target for e in self.edges):
            self.edges.append(Edge(source, target, kind))


def discover_sources() -> None:
    """Import every module that declares consumers or sources: each app's consumers.py, the
    URLconf (the endpoints and the modules they publish through), each app's tasks.py and
    the apps' management commands (the watcher, the generators)."""
    from django.core.management import get_commands
    from django.utils.module_loading import autodiscover_modules

    from streams.kafka.registry import discover

    discover()
    import_module(settings.ROOT_URLCONF)
    autodiscover_modules("tasks")
    for command, app in get_commands().items():
        if app in _APPS_WITH_COMMANDS:
            import_module(f"{app}.management.commands.{command}")


def _admin_link(label: str) -> str:
    model = apps.get_model(label)
    try:
        return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    except NoReverseMatch:
        return ""


def _quarantine_link(**filters: str) -> str:
    query = "&".join(f"{key}={value}" for key, value in {"status__exact": "open", **filters}.items())
    return f"{reverse('admin:quarantine_quarantinerecord_changelist')}?{query}"


def _topic(graph: Graph, logical: str, order: int) -> str:
    from streams.kafka.topics import topic_name

    name = topic_name(logical)
    graph.add(Node(f"topic:{logical}", "topic", name, detail="" if name == logical else logical,
                   link=reverse("ops-topic-messages", args=[name]), order=order))
    return f"topic:{logical}"


def _writes(graph: Graph, node_id: str, labels: tuple[str, ...], order: int) -> None:
    for label in labels:
        if label == QUARANTINE_MODEL:
            graph.connect(node_id, "quarantine", "dead_letter")
            continue
        model = apps.get_model(label)
        graph.add(Node(f"table:{label}", "table", model._meta.verbose_name_plural.capitalize(),
                       detail=model._meta.db_table, link=_admin_link(label), order=order))
        graph.connect(node_id, f"table:{label}", "write")


def _task(graph: Graph, name: str, order: int) -> str:
    graph.add(Node(f"task:{name}", "task", name, detail="Celery task", link=reverse("ops-celery"), order=order))
    return f"task:{name}"


def topology_graph() -> Graph:
    """Every declared consumer and source, as nodes and edges (no live state yet)."""
    from streams.kafka.registry import consumers, pipelines, sources
    from streams.kafka.topics import all_topics

    discover_sources()
    order_of = {p.key: p.order for p in pipelines()}
    graph = Graph(nodes={}, edges=[])
    graph.add(Node("quarantine", "quarantine", "Quarantine", detail="dead letters and failed files",
                   link=_quarantine_link(), order=1000))
    for key, source in sources().items():
        order = order_of.get(source.pipeline, 900)
        if source.kind == "task":
            node_id = _task(graph, key, order)
            graph.nodes[node_id].label = source.label or key
            graph.nodes[node_id].detail = f"Celery task {key}" if source.label else "Celery task"
        else:
            node_id = f"source:{key}"
            graph.add(Node(node_id, "source", source.label, detail=source.kind, link=source.link, order=order))
        for logical in source.produces:
            graph.connect(node_id, _topic(graph, logical, order))
        for task in source.queues:
            graph.connect(node_id, _task(graph, task, order), "queue")
        _writes(graph, node_id, source.writes, order)
    for name, spec in consumers().items():
        order = spec.pipeline.order if spec.pipeline else 900
        node_id = f"consumer:{name}"
        graph.add(Node(node_id, "consumer", name, detail=f"group {spec.group_id()}",
                       link=reverse("ops-consumer", args=[name]), order=order))
        for logical in spec.topics:
            graph.connect(_topic(graph, logical, order), node_id)
        for logical in spec.produces:
            graph.connect(node_id, _topic(graph, logical, order))
        for task in spec.queues:
            graph.connect(node_id, _task(graph, task, order), "queue")
        _writes(graph, node_id, spec.writes, order)
        dead = _topic(graph, spec.dead_letter_topic, 1000)
        graph.connect(node_id, dead, "dead_letter")
        graph.connect(dead, "quarantine", "dead_letter")
    for topic in all_topics():  # a registered topic nothing declares it reads or writes: alone, but shown
        _topic(graph, topic.logical, 950)
    return graph


def _rate(value: float | None, unit: str = " msg/s") -> str:
    if value is None:
        return f"–{unit}"
    return f"{value:,.0f}{unit}" if value >= 10 else f"{value:.1f}{unit}"


def pipeline_map(*, now: datetime | None = None) -> Graph:
    """The graph with its live state: each consumer's state, members, rate and lag, each
    topic's rate, each edge into a consumer its lag on that topic, failed tasks, open
    quarantine; `red` on what a dashboard shows red."""
    from django.db.models import Count
    from django_celery_results.models import TaskResult

    from streams.kafka.topics import topic_name

    from .alerts import lag_fresh_seconds
    from .dashboard import dashboard_overview
    from .lag_history import newest_partition_lags, topic_rates

    now = now or timezone.now()
    graph = topology_graph()
    overview = dashboard_overview(now=now)
    graph.at = overview.at
    fresh = timedelta(seconds=lag_fresh_seconds())
    rows = {c.name: c for p in overview.pipelines for c in p.consumers}
    sampled = newest_partition_lags(at={n: c.lag_at for n, c in rows.items() if c.lag_at})
    rates = topic_rates(since=now - fresh)
    by_name = {topic_name(n.id.removeprefix("topic:")): n for n in graph.nodes.values() if n.kind == "topic"}
    for name, topic in by_name.items():
        topic.lines.append(_rate(rates.get(name)) if name in rates else "")
    for name, row in rows.items():
        node = graph.nodes.get(f"consumer:{name}")
        if node is None:
            continue
        node.state, node.red = row.status, row.red
        node.why = [f"{a.name}: {a.message}" for a in row.alerts] + ([row.reason] if row.reason else [])
        live = f"{row.live_members} live" if row.live_members else ""
        node.lines.append(", ".join(s for s in (row.status, live) if s))
        node.lines.append(f"{_rate(row.rate)} · lag {'–' if row.lag is None else row.lag}")
        if row.open_quarantine:
            node.lines.append(f"{row.open_quarantine} open in quarantine")
        for member in row.members.shown:
            who = member.label if member.instance_id else member.member
            text = " · ".join(s for s in (who, member.partitions_text) if s)
            text = text if member.condition == "live" else f"{text} ({member.condition})"
            node.members.append((text, member.red, f"{member.label} {member.member} {member.state}: {text}"))
        if row.members.unassigned:
            unassigned = f"unassigned {row.members.unassigned_text}"
            node.members.append((unassigned, True, f"no live member owns {row.members.unassigned_text}"))
        per_topic: dict[str, int] = {}
        for (topic, _partition), lag in (sampled.get(name) or {}).items():
            per_topic[topic] = per_topic.get(topic, 0) + lag
        for edge in graph.edges:
            if edge.target == node.id and edge.source in graph.nodes:
                topic = graph.nodes[edge.source].label
                rate = rates.get(topic)
                lag = per_topic.get(topic) if row.lag is not None else None
                edge.label = f"{_rate(rate, '/s')} · lag {'–' if lag is None else lag}"
                edge.red = row.red or any(a.name.startswith("consumer_lag") for a in row.alerts)
    failed = dict(TaskResult.objects.filter(status="FAILURE", date_done__gte=now - timedelta(days=1))
                  .values_list("task_name").order_by().annotate(n=Count("id")))
    queued = sum(q.length for q in overview.queues)
    for node in graph.nodes.values():
        if node.kind != "task":
            continue
        task = node.id.removeprefix("task:")
        if failed.get(task):
            node.red, node.state = True, "failing"
            node.why.append(f"{failed[task]} failed in 24 h")
            node.lines.append(f"{failed[task]} failed (24 h)")
            node.link = f"{reverse('admin:django_celery_results_taskresult_changelist')}?task_name={task}"
        else:
            node.lines.append(f"{queued} queued (all tasks)" if overview.broker_up else "broker unreachable")
    quarantine = graph.nodes["quarantine"]
    open_total = sum(overview.open_by_source.values())
    quarantine.state = "open" if open_total else "empty"
    quarantine.red = bool(open_total)
    quarantine.lines = [f"{open_total} open"] + [f"{source}: {n}" for source, n in overview.open_by_source.items()]
    for edge in graph.edges:  # a consumer's dead letters: red when it has open quarantine
        consumer = rows.get(edge.source.removeprefix("consumer:"))
        if edge.kind == "dead_letter" and consumer is not None and consumer.open_quarantine:
            edge.red = True
            edge.label = f"{consumer.open_quarantine} open"
    return graph
