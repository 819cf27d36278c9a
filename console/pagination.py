"""Pages of the API: every list is bounded, and the large tables are never counted.

`BoundedLimitOffsetPagination` is the default (`?limit=&offset=`, at most
API_MAX_PAGE_SIZE rows, with a total `count`): for the small tables (catalog,
reports, files, statistics, quarantine). `NewestFirstCursorPagination` is for
tables that grow with the traffic (telemetry, processed orders, order windows,
sensor readings, activity): opaque `next`/`previous` cursors over the primary
key, newest first, so a page costs an index range scan and no COUNT(*), however
deep the caller goes (a table ordered by something else subclasses it with its
own indexed ordering, as processed orders and order windows do). Never a page
OFFSET, which reads every row it skips: a cursor skips only the rows of its
own position that it gave already (orders of one instant, windows of one
start). The raw rows of ingested files have their own
keyset pages (ingest/api.py), as their table has no B-tree on the id.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework.pagination import CursorPagination, LimitOffsetPagination


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    @property
    def max_limit(self) -> int:
        return settings.API_MAX_PAGE_SIZE


class NewestFirstCursorPagination(CursorPagination):
    ordering = "-id"
    page_size = 50
    # The same parameter name as the offset pages, so `?limit=` keeps its meaning.
    page_size_query_param = "limit"

    @property
    def max_page_size(self) -> int:
        return settings.API_MAX_PAGE_SIZE

