"""The Arrow path: a block of lines checked with Arrow's C++ CSV parser and
compute kernels, the fastest of the three paths (one line per record, the
header's width, UTF-8, no NUL or lone CR). Rows a kernel cannot vouch for go
to the row rules (rows.py); a block this path cannot take goes to the column
path (columns.py).

Called by: stream.RowStream._process, as a mixin of RowStream (the methods read
the stream's header, columns, strictness and counters).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from .. import copybinary
from .rules import EPOCH_HARD_MAX, EPOCH_HARD_MIN, Column, Contract

if TYPE_CHECKING:
    from .stats import PassStats

# For Arrow (RE2, ASCII digits): the row rule's number grammar, to find the values
# of a column whose cast failed. Arrow's cast itself accepts only these forms
# plus inf/nan spellings, which the finiteness check sets aside.
_ARROW_NUMBER = r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"
# A text value Arrow may vouch for as "not blank": printable ASCII at both ends
# (str.strip() would remove more kinds of space than Arrow knows; those go to the rules).
_ARROW_NOT_BLANK = r"^[!-~](?:.*[!-~])?$"


class ArrowPath:
    """The Arrow path's methods and state (set up by `_arrow_setup`)."""

    header: list[str]
    columns: list[Column]
    strict: bool
    stats: PassStats
    collector: Any
    copy_kinds: list[int]

    def _arrow_setup(self, header: list[str], contract: Contract) -> None:
        """Arrow's parse options and each number column's bounds, once per stream."""
        self._arrow_convert = pa_csv.ConvertOptions(
            column_types={name: pa.string() for name in header}, strings_can_be_null=False,
            quoted_strings_can_be_null=False, check_utf8=True)
        self._arrow_booleans = pa.array(sorted(contract.booleans), type=pa.string())
        self._arrow_true = pa.array(sorted(contract.true_literals), type=pa.string())
        self._bounds: dict[str, tuple[float, float]] = {}
        for column in self.columns:
            if column.type in ("number", "epoch"):
                low = column.min if self.strict and column.min is not None else -math.inf
                high = column.max if self.strict and column.max is not None else math.inf
                if column.type == "epoch":
                    low, high = max(low, EPOCH_HARD_MIN), min(high, EPOCH_HARD_MAX)
                self._bounds[column.name] = (low, high)

    def _process_arrow(self, first: int, data: bytes, lines: list[bytes]) -> bytes | None:
        """Check a block with Arrow's C++ CSV parser and compute kernels, one line
        per record. Rows a check cannot vouch for, and lines that are not
        exactly one record of the header's width, go to the row rules (the
        authority). None: the block is not for this path (NUL, a lone CR, not
        UTF-8, a line count that does not match)."""
        n = len(lines)
        if b"\x00" in data:
            return None
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n")
            if b"\r" in data:
                return None
        skipped: list[int] = []

        def invalid_row(row) -> str:
            skipped.append(-1 if row.number is None else row.number - 1)
            return "skip"

        try:
            table = pa_csv.read_csv(
                pa.BufferReader(data),
                read_options=pa_csv.ReadOptions(column_names=self.header, use_threads=False,
                                                 block_size=len(data) + 1),
                parse_options=pa_csv.ParseOptions(newlines_in_values=False, ignore_empty_lines=False,
                                                  invalid_row_handler=invalid_row),
                convert_options=self._arrow_convert,
            )
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            return None
        if data.endswith(b"\n"):
            skipped.append(n - 1)  # the last line is empty: Arrow reads its newline as the end of the one before
        rows = table.num_rows
        if rows + len(skipped) != n or (skipped and min(skipped) < 0):
            return None
        bad = np.zeros(rows, dtype=bool)
        values: list[Any] = []
        for column, chunked in zip(self.columns, table.columns):
            array = chunked.combine_chunks()
            if column.type in ("number", "epoch"):
                checked = self._arrow_numbers(column, array)
                if checked is None:
                    return None
                numbers, ok = checked
                bad |= ~ok
                values.append(numbers)
            elif column.type == "boolean":
                bad |= ~pc.is_in(array, value_set=self._arrow_booleans).to_numpy(zero_copy_only=False)
                values.append(pc.is_in(array, value_set=self._arrow_true).to_numpy(zero_copy_only=False))
            else:
                if self.strict:
                    ok = np.ones(rows, dtype=bool)
                    if column.required:
                        ok &= pc.match_substring_regex(array, _ARROW_NOT_BLANK).to_numpy(zero_copy_only=False)
                    if column.max_length is not None:
                        ok &= pc.less_equal(pc.utf8_length(array), column.max_length).to_numpy(
                            zero_copy_only=False)
                    bad |= ~ok
                values.append(array)
        flagged = set(skipped)
        suspects = np.flatnonzero(bad)
        if len(suspects):
            line_of_row = np.delete(np.arange(n), skipped) if skipped else np.arange(n)
            flagged.update(line_of_row[suspects].tolist())
        body = b""
        keep = ~bad
        count = int(keep.sum())
        if self.loading and count:
            mask = pa.array(keep)
            kept = [v.filter(mask) if isinstance(v, pa.Array) else v[keep] for v in values]
            if self.collector is not None and self._device_pos is not None:
                self.collector.add_arrow_block(
                    kept[self._device_pos], {m: kept[i] for m, i in self._metric_pos.items()})
            fields = [copybinary.Text.of_arrow(v) if isinstance(v, pa.Array) else v for v in kept]
            body = copybinary.encode(self.copy_kinds, fields + self._constant_fields(count), count)
        return self._emit(first, lines, flagged, body)

    def _arrow_numbers(self, column: Column, array: pa.Array) -> tuple[np.ndarray, np.ndarray] | None:
        """The column as float64 and where its values pass the number and range
        rules; None if Arrow cannot parse values the row grammar accepts."""
        parsed = None
        try:
            numbers = pc.cast(array, pa.float64()).to_numpy(zero_copy_only=False)
        except pa.ArrowInvalid:
            # Empty values are the usual culprit and cheap to find; the grammar only if more is wrong.
            numbers = None
            parsed = pc.not_equal(array, "")
            try:
                numbers = pc.cast(pc.if_else(parsed, array, "0"), pa.float64()).to_numpy(zero_copy_only=False)
            except pa.ArrowInvalid:
                parsed = pc.match_substring_regex(array, _ARROW_NUMBER)
            if numbers is None:
                try:
                    numbers = pc.cast(pc.if_else(parsed, array, "0"), pa.float64()).to_numpy(zero_copy_only=False)
                except pa.ArrowInvalid:
                    return None
            parsed = parsed.to_numpy(zero_copy_only=False)
        low, high = self._bounds[column.name]
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(numbers) & (numbers >= low) & (numbers <= high)
        if parsed is not None:
            ok &= parsed
        return numbers, ok
