"""The operations console: the room where operators run the pipelines from the admin.

It holds:

* the pages under /admin/ops/: pages.py (the URLs and permissions, the dashboard, a
  consumer's page, Celery's workers and queues), topic_pages.py (topics and the
  message browser, highlight.py colouring its JSON), offsets.py (resetting a group's offsets);
* what the dashboards show, read in one place for every page that shows it:
  dashboard.py, with members.py (a group's members), lag_history.py (the lag samples,
  their charts) and alerts.py (every threshold passed now);
* the pipeline map: topology.py (the graph of every pipeline from the consumer registry
  and the declared sources, with its live state) and map_svg.py (its layout and drawing);
* the trace page ("find an event"): trace.py (an event's path through the pipelines
  from the stored rows and the topics), trace_query.py (reading the query),
  trace_hops.py (each hop, its link and its partition's owner) and trace_scan.py (the
  bounded topic scans);
* the actions the pages take: kafka_actions.py (produce, re-drive dead letters) and
  celery_ops.py (Celery's workers and queues, retry, revoke);
* the task results' and audit log's admin (admin.py), /healthz (health.py) and
  /metrics (metrics.py).

Pipelines and their consumers come from the consumer registry (streams.kafka.registry),
and who counts as a live member from the heartbeats' one rule
(streams.kafka.heartbeat.member_is_live).

It is a package of the `console` app, not an app of its own, so its permissions stay
`console.*` and its models (LagSample, AuditEntry) stay in console/models.py.

It imports the platform (`streams.kafka`), quarantine's models and the console's shared
web kit. No app imports it (`.importlinter`); the console's entry points do (urls.py,
admin.py, tasks.py, apps.py, the template tags).
"""
