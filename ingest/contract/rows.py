"""The row path: the contract's rules applied one record at a time, with the
line, column, value, rule and message of every error. The authority: the
fast paths (arrow.py, columns.py) send here every line they cannot vouch for,
and whole blocks they cannot take.

Called by: stream.RowStream and the fast paths, as a mixin of RowStream (the
methods read the stream's columns, strictness, limits and counters).
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import copybinary
from .lines import Overlong
from .rules import VALUE_PREVIEW, Column, Contract, check_value, preview

if TYPE_CHECKING:
    from .stats import PassStats


class RowPath:
    """The row rules' methods."""

    contract: Contract
    columns: list[Column]
    strict: bool
    max_line: int
    max_errors: int
    stats: PassStats
    on_rejected: Callable[[int, str], None] | None
    collector: Any
    copy_kinds: list[int]
    _ncols: int
    _true: frozenset[str]
    _device_pos: int | None
    _metric_pos: dict[str, int]

    def _encode_rows(self, rows: list[list[str]]) -> bytes:
        """Binary COPY data of rows the row rules accepted (values as text)."""
        if not rows:
            return b""
        fields: list[copybinary.Field] = []
        for column, values in zip(self.columns, zip(*rows)):
            if column.type in ("number", "epoch"):
                fields.append(np.array([float(v) for v in values], dtype=np.float64))
            elif column.type == "boolean":
                fields.append(np.array([v in self._true for v in values], dtype=bool))
            else:
                fields.append(copybinary.Text.of(values))
        return copybinary.encode(self.copy_kinds, fields + self._constant_fields(len(rows)), len(rows))

    def _error(self, line: int, column: str | None, value: Any, rule: str, message: str) -> None:
        self.stats.error_count += 1
        if len(self.stats.errors) < self.max_errors:
            self.stats.errors.append(
                {"line": line, "column": column, "value": preview(value), "rule": rule, "message": message}
            )

    def _reject(self, line: int, raw: str) -> None:
        self.stats.rows_total += 1
        self.stats.rows_rejected += 1
        if self.on_rejected:
            self.on_rejected(line, raw)

    def _process_slowly(self, first: int, lines: list) -> list[list[str]]:
        """The row rules (the authority) over consecutive lines: errors and
        counts recorded, the valid rows returned (none once not loading)."""
        good: list[tuple[int, str]] = []
        for offset, item in enumerate(lines):
            line = first + offset
            if isinstance(item, Overlong):
                self._error(line, None, item.preview, "line_length",
                            f"line of {item.length:,} bytes is longer than the limit of {self.max_line:,}")
                self._reject(line, item.preview.decode("utf-8", "replace"))
                continue
            if len(item) > self.max_line:
                self._error(line, None, item[:VALUE_PREVIEW], "line_length",
                            f"line of {len(item):,} bytes is longer than the limit of {self.max_line:,}")
                self._reject(line, item[:VALUE_PREVIEW].decode("utf-8", "replace"))
                continue
            try:
                text = item.decode("utf-8")
            except UnicodeDecodeError as exc:
                self._error(line, None, item, "encoding", f"not UTF-8 (invalid byte at offset {exc.start})")
                self._reject(line, item.decode("utf-8", "replace"))
                continue
            if text.endswith("\r"):
                text = text[:-1]
            if not text.strip():
                self.stats.blank_lines += 1
                continue
            if "\x00" in text:
                self._error(line, None, text, "binary", "contains NUL bytes")
                self._reject(line, text.replace("\x00", "\\0"))
                continue
            good.append((line, text))
        if not good:
            return []
        accepted: list[list[str]] = []
        texts = [t for _, t in good]
        reader = csv.reader(texts)
        consumed = 0
        while consumed < len(texts):
            start = consumed
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                consumed = reader.line_num
                line = good[start][0]
                self._error(line, None, texts[start], "csv", f"not parseable as CSV: {exc}")
                self._reject(line, "\n".join(texts[start:consumed]))
                continue
            consumed = reader.line_num
            line = good[start][0]
            if len(row) != self._ncols:
                self._error(line, None, texts[start], "columns",
                            f"expected {self._ncols} fields, found {len(row)}")
                self._reject(line, "\n".join(texts[start:consumed]))
                continue
            ok = True
            for column, value in zip(self.columns, row):
                problem = check_value(column, value, strict=self.strict, contract=self.contract)
                if problem is not None:
                    ok = False
                    self._error(line, column.name, value, *problem)
            if not ok:
                self._reject(line, "\n".join(texts[start:consumed]))
                continue
            self.stats.rows_total += 1
            self.stats.rows_valid += 1
            if self.loading:
                accepted.append(row)
                if self.collector is not None and self._device_pos is not None:
                    self.collector.add_row(row[self._device_pos],
                                           {m: float(row[i]) for m, i in self._metric_pos.items()})
        return accepted
