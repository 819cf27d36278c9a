"""What the admins of every app share: read-only admins, the admin's change log,
and the pieces that keep a changelist of a large table as cheap at millions of
rows as at none.

`log_changes` is the one writer of Django's admin log (`LogEntry`, each
object's History page), for the admin's own pages and for the services an
operator calls from them (a bulk quarantine action, a release of late orders,
a rebuild of order windows). The audit log of operator actions is another
thing (console/audit.py): it records every outcome, refused and failed ones
included, whatever the entry point.

For the tables that grow with the traffic (`LargeTableAdmin`): a paginator that
never counts the table (`BoundedPaginator`: PostgreSQL's estimate, or a count
that stops at a cap, and pages up to that cap), a time filter whose default is
a window before the newest row (`RecentWindowFilter`, widened by the operator),
and filter choices read by a skip scan of an index (`distinct_values`) rather
than a `DISTINCT` over every row. docs/streams.md says what each page costs.

Imported by every app's admin and by services that act for an admin user; imports only Django.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.contrib import admin
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import SEARCH_VAR
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Model, Q, QuerySet
from django.http import HttpRequest
from django.utils.functional import cached_property


def log_changes(*, user: Any, objects: Iterable[Model], message: str, flag: int = CHANGE) -> None:
    """One entry per object in Django's admin log (each object's History): who
    did what to it. Objects are written in one INSERT (one: a plain save)."""
    objects = list(objects)
    if objects:
        LogEntry.objects.log_actions(user_id=user.pk, queryset=objects, action_flag=flag, change_message=message)


def log_change(request: HttpRequest, obj: Model, message: str, flag: int = CHANGE) -> None:
    """`log_changes` for one object, by the user of an admin request."""
    log_changes(user=request.user, objects=[obj], message=message, flag=flag)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows that only the pipelines write: listed and shown, never added or
    edited in the admin. Deleting is refused too unless `deletable` (then the
    user's delete permission decides, as usual)."""

    deletable = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return self.deletable and super().has_delete_permission(request, obj)


class DeletableReadOnlyAdmin(ReadOnlyAdmin):
    """Read-only rows that may be deleted by hand, with the usual delete permission."""

    deletable = True


# ------------------------------------------------------------ large tables


def estimated_rows(table: str) -> int:
    """PostgreSQL's planner estimate of a table's rows (`reltuples`): no scan.
    0 for a table never analysed (-1 in the catalog)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [table])
        row = cursor.fetchone()
    return max(int(row[0]) if row else 0, 0)


def distinct_values(model: type[Model], field: str, *, limit: int) -> list:
    """Up to `limit` distinct values of `field`, smallest first, by a skip scan:
    one probe of a B-tree whose first column is `field` per value, so the cost
    grows with the values asked for, not with the rows (a `SELECT DISTINCT`
    reads every row). Needs that index; NULLs are left out."""
    table = connection.ops.quote_name(model._meta.db_table)
    column = connection.ops.quote_name(model._meta.get_field(field).column)
    sql = f"""
        WITH RECURSIVE v(value) AS (
            (SELECT {column} FROM {table} WHERE {column} IS NOT NULL ORDER BY {column} LIMIT 1)
            UNION ALL
            SELECT (SELECT {column} FROM {table} WHERE {column} > v.value ORDER BY {column} LIMIT 1)
            FROM v WHERE v.value IS NOT NULL
        )
        SELECT value FROM v WHERE value IS NOT NULL LIMIT %s"""
    with connection.cursor() as cursor:
        cursor.execute(sql, [limit])
        return [row[0] for row in cursor.fetchall()]


class AtLeast(int):
    """A count that stopped at its cap: compares as the cap, shows as "10,000+"."""

    def __str__(self) -> str:
        return f"{int(self):,}+"


class BoundedPaginator(Paginator):
    """Pages of a large table that never count it.

    The count is exact up to LIMIT rows (a count of a subquery that stops
    there), PostgreSQL's estimate for an unfiltered list beyond that, and
    "LIMIT+" for a filtered one. Pages stop at LIMIT rows too, so no page reads
    more than LIMIT rows to skip (an OFFSET): deeper than that, narrow the list
    (a time window, a filter) or page the API, whose cursors have no depth."""

    LIMIT = 10_000
    # The capped count reads the rows in the list's order, so over the index the page reads
    # (unordered, PostgreSQL may pick a sequential scan that stops at LIMIT matches: cheap when
    # they are spread evenly, the whole table when they are all recent).
    count_in_order = True

    @cached_property
    def count(self) -> int:
        qs: QuerySet = self.object_list
        if not qs.query.where:
            estimate = estimated_rows(qs.model._meta.db_table)
            if estimate >= self.LIMIT:
                return estimate
        capped = (qs if self.count_in_order else qs.order_by())[: self.LIMIT].count()
        return AtLeast(capped) if capped >= self.LIMIT else capped

    @cached_property
    def num_pages(self) -> int:
        return min(super().num_pages, max(math.ceil(self.LIMIT / self.per_page), 1))


class RecentWindowFilter(admin.SimpleListFilter):
    """Rows of a time window that ends at the newest row: `default` unless the
    operator picks another or "all time". A search the admin answers by a key's
    index alone (LargeTableAdmin.search_is_keyed: an order id) drops the
    default, so it finds old rows too; any other search stays in the window.

    `field` must be indexed (the newest row is one probe of that index, and the
    window a range of it); `epoch = True` when it holds epoch seconds. The
    window ends at the newest row, not at the wall clock, so a page of old
    data (a replay, a demo, a file of last year's readings) is not empty."""

    title = "time (before the newest row)"
    parameter_name = "window"
    field = ""
    epoch = False
    default: str | None = "24h"
    ALL = "all"
    WINDOWS = {"1h": ("last hour", timedelta(hours=1)), "24h": ("last 24 hours", timedelta(days=1)),
               "7d": ("last 7 days", timedelta(days=7)), "30d": ("last 30 days", timedelta(days=30))}

    def __init__(self, request, params, model, model_admin):
        self.model_admin = model_admin
        super().__init__(request, params, model, model_admin)

    def lookups(self, request, model_admin):
        return [(key, label) for key, (label, _) in self.WINDOWS.items()] + [(self.ALL, "all time")]

    def current(self) -> str:
        if self.value() is not None:
            return self.value()
        term = self.request.GET.get(SEARCH_VAR, "").strip()
        keyed = term and getattr(self.model_admin, "search_is_keyed", lambda term: False)(term)
        return self.default if self.default and not keyed else self.ALL

    def choices(self, changelist):
        current = self.current()
        for lookup, title in self.lookup_choices:
            yield {"selected": current == lookup, "display": title,
                   "query_string": changelist.get_query_string({self.parameter_name: lookup})}

    def newest(self, model: type[Model]):
        return model._default_manager.order_by(f"-{self.field}").values_list(self.field, flat=True).first()

    def queryset(self, request, queryset):
        key = self.current()
        if key == self.ALL:
            return queryset
        if key not in self.WINDOWS:
            raise IncorrectLookupParameters(f"unknown time window {key!r}")
        newest = self.newest(queryset.model)
        if newest is None:
            return queryset
        span = self.WINDOWS[key][1]
        return self.after(queryset, newest - int(span.total_seconds()) if self.epoch else newest - span)

    def after(self, queryset: QuerySet, start) -> QuerySet:
        """The rows of the window starting (excluded) at `start`."""
        return queryset.filter(**{f"{self.field}__gt": start})


class LargeTableAdmin(admin.ModelAdmin):
    """A changelist of a table that grows with the traffic: never counted
    (BoundedPaginator, no full count), no facet counts. Its filters must take
    their choices from elsewhere than a scan (fixed choices, a catalog,
    `distinct_values`), its time filter is a RecentWindowFilter, and its
    search fields indexed columns, matched exactly: `=field` here is `=`
    (Django's own `=` is `iexact`, `UPPER(col) = UPPER(term)`, which no
    B-tree serves), with the term converted to the field's type; a term that
    is not one (a word for a number, too long for the column) matches nothing
    there."""

    paginator = BoundedPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 100

    def search_is_keyed(self, term: str) -> bool:
        """Whether this search is answered by a key's index alone, so the default
        time window need not bound it (RecentWindowFilter)."""
        return False

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        match = Q()
        for name in self.get_search_fields(request):
            field = self.model._meta.get_field(name.lstrip("="))
            try:
                value = field.clean(term, None)
            except ValidationError:
                continue
            match |= Q(**{field.name: value})
        return (queryset.filter(match) if match else queryset.none()), False
