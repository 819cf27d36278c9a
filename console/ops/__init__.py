"""The operations console: the room where operators run the pipelines from the admin.

It holds the pages under /admin/ops/ (pages: the dashboard, a consumer's page with its
members and offsets, topics and the message browser, Celery's workers and queues), the
actions they take (Kafka: produce, re-drive, reset offsets; Celery: retry, revoke), the
task results' and audit log's admin, the alerts, the lag history, /healthz and /metrics.

It is a package of the `console` app, not an app of its own, so its permissions stay
`console.*` and its models (LagSample, AuditEntry) stay in console/models.py.

It imports the platform (`streams.kafka`), quarantine's models and the console's shared
web kit. No app imports it (`.importlinter`); the console's entry points do (urls.py,
admin.py, tasks.py, apps.py, the template tags).
"""
