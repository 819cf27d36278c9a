"""Set-based writes: one statement per batch, never one per row.

The platform's batch-SQL helpers; pipelines call them, and they import only
Django's connection and psycopg2. Which to use when:

- `upsert_rows` (`INSERT .. VALUES %s ON CONFLICT` through psycopg2's
  execute_values): rows as tuples of mixed types, a few thousand per batch,
  where the rows hold text or timestamps (readings). psycopg2 formats every
  row in Python (`mogrify`): about 25 us a row.
- `number_array` (a PostgreSQL array literal, `'{1,2,3}'`, passed as one
  string and cast, `%s::int[]`, then `unnest`ed): columns of ints or finite
  floats, such as telemetry's readings (streams/telemetry/services.py, for the
  consumer and the factory loader); one `str.join` per column instead of one
  adaptation per value, so a batch of 5,000 rows costs a few milliseconds.
- A statement of the pipeline's own (orders' window deltas, the catalog
  upsert) when the upsert is not a plain "insert or replace": a merge by
  deltas, a `RETURNING` that the batch needs. Keep it one statement per batch.
- COPY (ingest/loading.py, ingest/copybinary.py) for files: hundreds of
  thousands of rows into a fresh table, no conflicts to resolve.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection
from psycopg2.extras import execute_values
from psycopg2 import sql


def number_array(values: Iterable[int | float]) -> str:
    """A PostgreSQL array literal of ints or finite floats (`'{1,2.5,3}'`), for `%s::int[]`,
    `%s::bigint[]` or `%s::float8[]`: `repr` of a float reads back as the same double."""
    return "{" + ",".join(map(repr, values)) + "}"


def upsert_rows(
    *,
    table: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    conflict: Sequence[str],
    update: Sequence[str] = (),
    only_if_changed: Sequence[str] = (),
    page_size: int = 5000,
) -> int:
    """INSERT rows ... ON CONFLICT (conflict) DO UPDATE SET update (or DO NOTHING).

    Rows must be unique on `conflict` within one call (PostgreSQL refuses to
    update the same row twice in one statement): deduplicate first.
    With `only_if_changed`, a conflicting row is updated only where one of those
    columns differs. Returns the number of rows sent.
    """
    if not rows:
        return 0
    action = (
        sql.SQL("DO UPDATE SET ") + sql.SQL(", ").join(
            sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c)) for c in update
        )
        if update else sql.SQL("DO NOTHING")
    )
    if update and only_if_changed:  # a replay of the same values writes nothing
        action += sql.SQL(" WHERE ") + sql.SQL(" OR ").join(
            sql.SQL("{t}.{c} IS DISTINCT FROM EXCLUDED.{c}").format(t=sql.Identifier(table), c=sql.Identifier(c))
            for c in only_if_changed
        )
    statement = sql.SQL("INSERT INTO {table} ({columns}) VALUES %s ON CONFLICT ({conflict}) ").format(
        table=sql.Identifier(table),
        columns=sql.SQL(", ").join(map(sql.Identifier, columns)),
        conflict=sql.SQL(", ").join(map(sql.Identifier, conflict)),
    ) + action
    with connection.cursor() as cursor:
        raw = cursor.cursor  # the psycopg2 cursor under Django's wrapper
        execute_values(raw, statement.as_string(raw), rows, page_size=page_size)
    return len(rows)
