"""Set-based writes for consumers: one statement per batch, never one per row."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection
from psycopg2.extras import execute_values
from psycopg2 import sql


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
