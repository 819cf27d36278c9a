"""Permissions of the operations pages (console/ops.py), which have no model of their own.

`Operations` has no table (managed = False): it only carries the permissions,
so they can be granted to users and groups like any other.
"""

from __future__ import annotations

from django.db import models


class Operations(models.Model):
    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("view_operations", "Can view the operations dashboard and the Kafka topics"),
            # Raw messages carry whatever producers put in them: a permission of their own.
            ("view_topic_messages", "Can read recent messages of Kafka topics"),
        ]
