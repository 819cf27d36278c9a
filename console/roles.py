"""The groups the console's roles are made of, and the permissions of each.

* `telemetry-publishers`: a service account's whole scope (`create_service_token`
  puts its accounts here): publish telemetry and product registrations.
* `file-uploaders`: upload sensor files (`POST /api/files/`) and follow them.
* `viewers`: every read of the pipelines' tables (the `view_*` permissions of
  streams, ingest and quarantine) and nothing else: single sign-on's viewer
  role (console/sso/roles.py).
* `operators`: the quarantine actions (quarantine/services/actions.py) plus every read
  of the pipelines' tables, product edits and deletes, report requests and
  builds, file uploads and requeues, order-window rebuilds and releases of
  late orders, and the operations pages including raw topic messages, Celery
  task results with retry and revoke, and the audit log.

Migration console/0002 creates them on a real database (streams/0009 adds the
release of late orders; `viewers` came later and only `roles_ensure` makes it); `roles_ensure` (after
every migrate, and so after a test database is flushed) recreates a group
that is missing, leaving existing ones as the admins set them.
"""

from __future__ import annotations

PUBLISHERS_GROUP = "telemetry-publishers"
PUBLISHER_PERMISSIONS = ["streams.publish_telemetry", "streams.register_product"]

UPLOADERS_GROUP = "file-uploaders"
UPLOADER_PERMISSIONS = ["ingest.upload_file", "ingest.view_ingestedfile"]

VIEWERS_GROUP = "viewers"

OPERATORS_GROUP = "operators"
OPERATOR_VIEW_APPS = ["streams", "ingest", "quarantine"]
OPERATOR_PERMISSIONS = [
    "streams.change_product", "streams.delete_product",
    "streams.add_correlationreport", "streams.build_correlationreport",
    "streams.change_productwindow", "streams.release_late_orders",
    "ingest.upload_file", "ingest.change_ingestedfile",
    "console.view_operations", "console.view_topic_messages",
    "quarantine.release_quarantinerecord", "quarantine.reprocess_quarantinerecord",
    "quarantine.discard_quarantinerecord",
    # Celery (console/ops/celery_ops.py; migration console/0004).
    "console.retry_task", "console.revoke_task", "console.view_auditentry",
    "django_celery_results.view_taskresult",
    # Kafka actions on the operations pages (migration console/0006).
    "console.produce_message", "console.redrive_dead_letters", "console.reset_offsets",
]


def permissions_named(names: list[str]):
    from django.contrib.auth.models import Permission
    from django.db.models import Q

    query = Q(pk__in=[])
    for name in names:
        app_label, codename = name.split(".", 1)
        query |= Q(content_type__app_label=app_label, codename=codename)
    return Permission.objects.filter(query)


def roles_ensure() -> None:
    from django.apps import apps
    from django.contrib.auth.management import create_permissions
    from django.contrib.auth.models import Group, Permission

    # Other apps' permissions may not be created yet when this runs (post_migrate
    # goes app by app); creating them is idempotent.
    for label in ("console", "streams", "ingest", "quarantine", "django_celery_results"):
        create_permissions(apps.get_app_config(label), verbosity=0)
    publishers, created = Group.objects.get_or_create(name=PUBLISHERS_GROUP)
    if created:
        publishers.permissions.add(*permissions_named(PUBLISHER_PERMISSIONS))
    uploaders, created = Group.objects.get_or_create(name=UPLOADERS_GROUP)
    if created:
        uploaders.permissions.add(*permissions_named(UPLOADER_PERMISSIONS))
    viewers, created = Group.objects.get_or_create(name=VIEWERS_GROUP)
    if created:
        viewers.permissions.add(
            *Permission.objects.filter(content_type__app_label__in=OPERATOR_VIEW_APPS, codename__startswith="view_"))
    operators, created = Group.objects.get_or_create(name=OPERATORS_GROUP)
    if created:
        operators.permissions.add(
            *Permission.objects.filter(content_type__app_label__in=OPERATOR_VIEW_APPS, codename__startswith="view_"),
            *permissions_named(OPERATOR_PERMISSIONS),
        )
