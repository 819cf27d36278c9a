"""The column path: a block split into columns with plain string operations
(or the csv module) and checked a column at a time in Python at C speed
(numpy over the bytes, orjson, min/max, set inclusion). It takes the blocks
the Arrow path (arrow.py) cannot; what it cannot vouch for, line by line, goes
to the row rules (rows.py).

Called by: stream.RowStream._process, as a mixin of RowStream (the methods read
the stream's columns, strictness and counters).
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterator
from itertools import compress, count, filterfalse, repeat
from operator import gt, lt, not_
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from .. import copybinary
from .rules import EPOCH_HARD_MAX, EPOCH_HARD_MIN, Column

if TYPE_CHECKING:
    from .stats import PassStats

_NUMBER_TYPES = frozenset({float, int})
# JSON's number grammar: narrower than NUMBER_RE, so what orjson reads the row rules accept too.
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")


def _flag_lines(text: str, n: int, ncols: int, *, quoted: bool) -> set[int] | None:
    """Indexes of the lines of `text` (n lines, no CR) that do not have the
    simple layout, found with numpy over the UTF-8 bytes (the ASCII bytes
    looked at never occur inside a multi-byte character, so byte lines are the
    text's lines). Plain: exactly ncols - 1 commas, no empty field. Quoted:
    every field quoted, no quote inside ('","' between fields, 2 * ncols quotes,
    no '""'). What is flagged goes to the row rules, so flagging more than
    necessary is safe; a line is never accepted here that str-level checks
    would set aside. None: the line count does not match."""
    buf = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    size = len(buf)
    if not size:
        return None
    newlines = np.flatnonzero(buf == 10)
    if len(newlines) != n - 1:
        return None
    starts = np.concatenate(([0], newlines + 1))
    ends = np.concatenate((newlines, [size]))
    bad = starts == ends  # empty lines
    first = buf[np.minimum(starts, size - 1)]
    last = buf[np.maximum(ends - 1, 0)]

    def per_line(positions: np.ndarray) -> np.ndarray:
        return np.searchsorted(positions, ends) - np.searchsorted(positions, starts)

    def line_of(positions: np.ndarray) -> np.ndarray:
        return np.searchsorted(starts, positions, side="right") - 1

    if not quoted:
        commas = np.flatnonzero(buf == 44)
        bad |= per_line(commas) != ncols - 1
        bad |= (first == 44) | (last == 44)
        bad[line_of(commas[1:][np.diff(commas) == 1])] = True  # ",," (an empty field)
    else:
        quote = buf == 34
        quotes = np.flatnonzero(quote)
        bad |= per_line(quotes) != 2 * ncols
        bad |= (first != 34) | (last != 34)
        separators = np.flatnonzero(quote[:-2] & (buf[1:-1] == 44) & quote[2:]) if size > 2 else quotes[:0]
        bad |= per_line(separators) != ncols - 1
        bad[line_of(separators[1:][np.diff(separators) == 2])] = True  # overlapping '","'
        bad[line_of(quotes[1:][np.diff(quotes) == 1])] = True  # '""' (empty or a quote inside)
    return set(np.flatnonzero(bad).tolist())


def _where(flags: Iterator[Any]) -> set[int]:
    """Positions of the truthy flags, without a Python-level loop."""
    return set(compress(count(), flags))


class ColumnPath:
    """The column path's methods; `_numbers` holds the numbers parsed for a block's checks."""

    columns: list[Column]
    strict: bool
    stats: PassStats
    collector: Any
    copy_kinds: list[int]
    _numbers: dict[str, list]

    def _process_columns(self, first: int, data: bytes, lines: list[bytes]) -> bytes | None:
        """Check a block (`data`: its lines joined) column by column. None: the
        block is not for this path (not UTF-8, a lone CR or NUL, records that
        span lines, values no column check can parse)."""
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return None
        if "\r" in text:
            text = text.replace("\r\n", "\n")
        if "\r" in text or "\x00" in text:
            return None
        split = self._split_columns(text, len(lines), quotes=data.count(b'"'))
        if split is None:
            return None
        str_lines, kept, columns, flagged = split
        suspects = self._columns_suspects(columns)
        if suspects is None:
            return None
        body = b""
        if self.loading:
            if self.collector is not None:
                self._collect(columns, suspects)
            body = self._encode_block(columns, suspects)
        if kept is not None:
            suspects = {kept[i] for i in suspects}
        flagged |= suspects
        return self._emit(first, str_lines, flagged, body)

    def _collect(self, columns: list, suspects: set[int]) -> None:
        """Hand the block's loaded values (the numbers parsed for the range checks;
        suspects are left to the row rules, which add the valid ones) to the collector."""
        if self._device_pos is None:
            return
        self.collector.add_block(
            columns[self._device_pos], {m: self._numbers[m] for m in self._metric_pos}, suspects)

    def _encode_block(self, columns: list, suspects: set[int]) -> bytes:
        """Binary COPY data of the block's rows that passed the column checks,
        from the numbers already parsed for those checks."""
        n = len(columns[0]) if columns else 0
        keep = None
        if suspects:
            keep = np.ones(n, dtype=bool)
            keep[list(suspects)] = False
        count = n if keep is None else int(keep.sum())
        if count == 0:
            return b""
        fields: list[copybinary.Field] = []
        for column, values in zip(self.columns, columns):
            if column.type in ("number", "epoch"):
                parsed = np.asarray(self._numbers[column.name], dtype=np.float64)
                fields.append(parsed if keep is None else parsed[keep])
            elif column.type == "boolean":
                truth = np.fromiter(map(self._true.__contains__, values), dtype=bool, count=n)
                fields.append(truth if keep is None else truth[keep])
            else:
                fields.append(copybinary.Text.of(values if keep is None else list(compress(values, keep))))
        return copybinary.encode(self.copy_kinds, fields + self._constant_fields(count), count)

    def _split_columns(
        self, text: str, n: int, *, quotes: int
    ) -> tuple[list[str], list[int] | None, list, set[int]] | None:
        """(lines, kept, columns, flagged): the columns of the rows that have the
        header's width; `flagged` are the line indexes set aside for the row
        rules, `kept` maps column positions to line indexes (None: all kept).

        Two layouts are split with plain string operations, which give exactly
        what a CSV parser gives when their conditions hold line by line: every
        field quoted with no quote inside, or no quote at all. Anything else goes
        through the csv module. None: records span lines (csv module, row rules)."""
        ncols = self._ncols
        lines = text.split("\n")
        if len(lines) != n:
            return None
        if not quotes:
            layout, separator = "plain", ","
        elif text[0] == '"' and text[-1] == '"':
            layout, separator = "quoted", '","'
        else:
            layout, separator = "csv", ""
        if layout != "csv":
            flagged = _flag_lines(text, n, ncols, quoted=(layout == "quoted"))
            if flagged is None:
                return None
            if not flagged:
                if layout == "plain":
                    flat = text.replace("\n", ",").split(",")
                else:
                    flat = text[1:-1].replace('"\n"', '","').split('","')
                return lines, None, [flat[i::ncols] for i in range(ncols)], set()
            # Lines that break the layout are set aside for the row rules.
            kept = list(filterfalse(flagged.__contains__, range(n)))
            if not kept:
                return lines, kept, [[] for _ in range(ncols)], flagged
            chosen = "\n".join(map(lines.__getitem__, kept))
            if layout == "plain":
                flat = chosen.replace("\n", ",").split(",")
            else:
                flat = chosen[1:-1].replace('"\n"', '","').split('","')
            return lines, kept, [flat[i::ncols] for i in range(ncols)], flagged
        try:
            rows = list(csv.reader(lines))
        except csv.Error:
            return None  # the row rules say which line and why
        if len(rows) != n:
            return None
        flagged = {i for i, row in enumerate(rows) if len(row) != ncols}
        if not flagged:
            return lines, None, list(zip(*rows)), set()
        kept = [i for i in range(n) if i not in flagged]
        columns = list(zip(*(rows[i] for i in kept))) if kept else [[] for _ in range(ncols)]
        return lines, kept, columns, flagged

    def _columns_suspects(self, columns: list) -> set[int] | None:
        """Positions whose values a column check cannot vouch for (they go to the
        row rules, which decide); None if the block must go row by row."""
        suspects: set[int] = set()
        for column, values in zip(self.columns, columns):
            if not values:
                continue
            kind = column.type
            if kind in ("number", "epoch"):
                try:
                    numbers = orjson.loads("[" + ",".join(values) + "]")
                except orjson.JSONDecodeError:
                    numbers = None
                # Only numbers, one per value (true/null/strings/arrays or a comma inside a value fail this).
                if numbers is not None and (len(numbers) != len(values)
                                            or not _NUMBER_TYPES.issuperset(map(type, numbers))):
                    numbers = None
                if numbers is None:
                    odd = _where(map(not_, map(_JSON_NUMBER.fullmatch, values)))
                    suspects.update(odd)
                    patched = list(values)
                    for i in odd:
                        patched[i] = "0"
                    try:
                        numbers = orjson.loads("[" + ",".join(patched) + "]")
                    except orjson.JSONDecodeError:
                        return None
                self._numbers[column.name] = numbers
                low = column.min if self.strict and column.min is not None else -math.inf
                high = column.max if self.strict and column.max is not None else math.inf
                if kind == "epoch":
                    low, high = max(low, EPOCH_HARD_MIN), min(high, EPOCH_HARD_MAX)
                smallest, largest = min(numbers), max(numbers)
                if not (low <= smallest and largest <= high and math.isfinite(smallest) and math.isfinite(largest)):
                    suspects |= _where(map(lt, numbers, repeat(low)))
                    suspects |= _where(map(gt, numbers, repeat(high)))
                    suspects |= _where(map(not_, map(math.isfinite, numbers)))
            elif kind == "boolean":
                if not self._booleans.issuperset(values):
                    suspects |= _where(map(not_, map(self._booleans.__contains__, values)))
            elif self.strict:
                if column.required and not all(map(str.strip, values)):
                    suspects |= _where(map(not_, map(str.strip, values)))
                if column.max_length is not None and max(map(len, values)) > column.max_length:
                    suspects |= _where(map(gt, map(len, values), repeat(column.max_length)))
        return suspects
