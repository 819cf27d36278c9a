"""The sensor CSV contract (declared once, in settings.INGEST_CONTRACT) and the
one-pass streaming validator that feeds PostgreSQL COPY (in binary format:
ingest/copybinary.py).

Speed comes from checking whole blocks at C speed: Arrow's CSV parser and
compute kernels first; for blocks Arrow cannot take, column checks in Python
(string splitting, numpy, orjson, min/max, set inclusion). Only the rows a
block-level check cannot vouch for go through the row-by-row rules, and those
rules are the authority: the block checks are strictly narrower, so they never
accept what the row rules would reject.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import compress, count, filterfalse, repeat
from operator import gt, lt, not_
from typing import Any, BinaryIO

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from django.conf import settings

from .. import copybinary

BOM = b"\xef\xbb\xbf"
BLOCK_BYTES = 2 * 1024 * 1024  # 2 MB: 20k-row blocks keep the transient objects of a block near 20 MB
# Hard limits of PostgreSQL's timestamptz, so that even a release "as is" loads.
EPOCH_HARD_MIN, EPOCH_HARD_MAX = -210866803200.0, 9224318015999.0
NUMBER_RE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_NUMBER_TYPES = frozenset({float, int})
# JSON's number grammar: narrower than NUMBER_RE, so what orjson reads the row rules accept too.
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
VALUE_PREVIEW = 100
# For Arrow (RE2, ASCII digits): the row rule's number grammar, to find the values
# of a column whose cast failed. Arrow's cast itself accepts only these forms
# plus inf/nan spellings, which the finiteness check sets aside.
_ARROW_NUMBER = r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"
# A text value Arrow may vouch for as "not blank": printable ASCII at both ends
# (str.strip() would remove more kinds of space than Arrow knows; those go to the rules).
_ARROW_NOT_BLANK = r"^[!-~](?:.*[!-~])?$"


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


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # "epoch" | "number" | "boolean" | "text"
    min: float | None = None
    max: float | None = None
    required: bool = False
    max_length: int | None = None
    aggregate: bool = False


@dataclass(frozen=True)
class Contract:
    columns: dict[str, Column]
    true_literals: frozenset[str]
    false_literals: frozenset[str]

    @classmethod
    def from_settings(cls) -> "Contract":
        spec = settings.INGEST_CONTRACT
        columns = {
            name: Column(
                name=name,
                type=rules["type"],
                min=rules.get("min"),
                max=rules.get("max"),
                required=rules.get("required", rules["type"] != "text"),
                max_length=rules.get("max_length"),
                aggregate=rules.get("aggregate", False),
            )
            for name, rules in spec["columns"].items()
        }
        return cls(columns, frozenset(spec["true"]), frozenset(spec["false"]))

    @property
    def metrics(self) -> list[str]:
        return [c.name for c in self.columns.values() if c.aggregate]

    @property
    def booleans(self) -> frozenset[str]:
        return self.true_literals | self.false_literals


class FileRejected(Exception):
    """The whole file breaks the contract (empty, bad header, not text)."""

    def __init__(self, reason: str, rule: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.rule = rule
        self.errors = errors or [{"line": 1, "column": None, "value": "", "rule": rule, "message": reason}]


def _preview(value: str | bytes) -> str:
    """A value as an error shows it: cut to VALUE_PREVIEW, NUL written as \\0 (jsonb refuses NUL)."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    value = value.replace("\x00", "\\0")
    return value if len(value) <= VALUE_PREVIEW else value[:VALUE_PREVIEW] + "…"


def read_header(fh: BinaryIO, contract: Contract, *, max_line: int) -> list[str]:
    """Read and check the header line; return the column names in file order.

    Tolerant of a BOM, CRLF, quotes, surrounding whitespace and letter case;
    strict about missing, unknown and repeated columns."""
    raw = fh.readline(max_line + 1)
    if not raw:
        raise FileRejected("the file is empty", "empty")
    if len(raw) > max_line and not raw.endswith(b"\n"):
        raise FileRejected(f"the header line is longer than {max_line} bytes (is this a CSV file?)", "line_length")
    if raw.startswith(BOM):
        raw = raw[len(BOM):]
    if b"\x00" in raw:
        raise FileRejected("the file is binary (NUL bytes in the header), not CSV text", "binary")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FileRejected(f"the header is not UTF-8 text (invalid byte at offset {exc.start})", "encoding") from None
    text = text.rstrip("\r\n")
    if not text.strip():
        raise FileRejected("the header line is empty", "header")
    try:
        names = [f.strip().lower() for f in next(csv.reader([text]))]
    except csv.Error as exc:  # e.g. a lone carriage return: the whole file read as one line
        raise FileRejected(f"the header is not parseable as CSV: {exc}", "header",
                           [{"line": 1, "column": None, "value": _preview(text), "rule": "csv",
                             "message": f"not parseable as CSV: {exc}"}]) from None
    expected = list(contract.columns)
    missing = [c for c in expected if c not in names]
    unknown = [n for n in names if n not in contract.columns]
    repeated = sorted({n for n in names if names.count(n) > 1})
    problems, errors = [], []
    if missing:
        problems.append(f"missing column(s): {', '.join(missing)}")
        errors += [{"line": 1, "column": c, "value": "", "rule": "header", "message": "missing column"} for c in missing]
    if unknown:
        problems.append(f"unexpected column(s): {', '.join(_preview(u) for u in unknown)}")
        errors += [{"line": 1, "column": _preview(u), "value": _preview(u), "rule": "header",
                    "message": "unexpected column"} for u in unknown]
    if repeated:
        problems.append(f"repeated column(s): {', '.join(repeated)}")
        errors += [{"line": 1, "column": c, "value": c, "rule": "header", "message": "repeated column"} for c in repeated]
    if problems:
        raise FileRejected("header: " + "; ".join(problems), "header", errors)
    return names


def check_value(column: Column, value: str, *, strict: bool, contract: Contract) -> tuple[str, str] | None:
    """(rule, message) when `value` breaks the column's rules, else None.
    Not strict ("as is"): only what the database needs to store the value."""
    if column.type in ("number", "epoch"):
        if value == "":
            return "required", "a number is required"
        if not NUMBER_RE.fullmatch(value):
            return "number", "not a number"
        number = float(value)
        if not math.isfinite(number):
            return "number", "not a finite number"
        if column.type == "epoch" and not EPOCH_HARD_MIN <= number <= EPOCH_HARD_MAX:
            return "range", "outside any representable time"
        if strict and column.min is not None and number < column.min:
            return "range", f"below the minimum {column.min:g}"
        if strict and column.max is not None and number > column.max:
            return "range", f"above the maximum {column.max:g}"
        return None
    if column.type == "boolean":
        if value not in contract.booleans:
            return "boolean", f"expected one of {', '.join(sorted(contract.booleans))}"
        return None
    if "\x00" in value:
        return "text", "contains a NUL byte"
    if strict and column.required and not value.strip():
        return "required", "must not be empty"
    if strict and column.max_length is not None and len(value) > column.max_length:
        return "max_length", f"longer than {column.max_length} characters"
    return None


class _Overlong:
    """Stands in for a line longer than the limit (its bytes are not kept)."""

    __slots__ = ("length", "preview")

    def __init__(self, preview: bytes) -> None:
        self.preview = preview
        self.length = len(preview)


def line_chunks(fh: BinaryIO, *, max_line: int, block: int = BLOCK_BYTES) -> Iterator[tuple[list, bool]]:
    """Split a binary stream into lists of lines (without b"\\n"), one block at a
    time. Memory stays bounded: a line longer than `max_line` is replaced by an
    _Overlong marker while the rest of it is skipped. Yields (lines, has_marker)."""
    carry = b""
    skipping: _Overlong | None = None
    while True:
        data = fh.read(block)
        if not data:
            break
        out: list = []
        marker = False
        if skipping is not None:
            newline = data.find(b"\n")
            if newline < 0:
                skipping.length += len(data)
                continue
            skipping.length += newline
            out.append(skipping)
            marker, skipping = True, None
            data = data[newline + 1:]
        if carry:
            data = carry + data
        parts = data.split(b"\n")
        carry = parts.pop()
        if len(carry) > max_line:
            skipping = _Overlong(carry[:VALUE_PREVIEW])
            skipping.length = len(carry)
            carry = b""
        out.extend(parts)
        if out:
            yield out, marker
    if skipping is not None:
        yield [skipping], True
    elif carry:
        yield [carry], False


@dataclass
class PassStats:
    rows_total: int = 0
    rows_valid: int = 0
    rows_rejected: int = 0
    blank_lines: int = 0
    bytes_read: int = 0
    error_count: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)


_COPY_KINDS = {"number": copybinary.FLOAT8, "epoch": copybinary.FLOAT8, "boolean": copybinary.BOOL,
               "text": copybinary.TEXT}


class RowStream(io.RawIOBase):
    """A read()-able stream for `cursor.copy_expert`: reads the file after its
    header in blocks, validates every row once, and returns the rows to load
    as PostgreSQL binary COPY data, columns in the file's own order
    (`copy_columns`), then `file_id` when one is given.

    * strict: the contract's rules; not strict ("as is"): only parseability.
    * load_after_errors: False stops sending rows at the first invalid one
      (the whole file will be quarantined, so only validation continues).
    * on_rejected(line, raw_text) receives every rejected record's text.
    """

    def __init__(
        self,
        fh: BinaryIO,
        *,
        header: list[str],
        contract: Contract,
        strict: bool = True,
        load_after_errors: bool = True,
        first_line: int = 2,
        max_line: int | None = None,
        max_errors: int | None = None,
        on_progress: Callable[[PassStats], None] | None = None,
        progress_every: int = 100_000,
        on_rejected: Callable[[int, str], None] | None = None,
        collector: Any = None,
        file_id: int | None = None,
    ) -> None:
        super().__init__()
        self.header = header
        self.contract = contract
        self.columns = [contract.columns[name] for name in header]
        self.strict = strict
        self.load_after_errors = load_after_errors
        self.max_line = max_line or settings.INGEST_MAX_LINE_BYTES
        self.max_errors = settings.INGEST_MAX_ERRORS_KEPT if max_errors is None else max_errors
        self.on_progress = on_progress
        self.progress_every = progress_every
        self.on_rejected = on_rejected
        self.stats = PassStats()
        self._next_line = first_line
        self._fh = fh
        self._chunks = line_chunks(fh, max_line=self.max_line)
        self._last_progress = 0
        self._booleans = contract.booleans
        self._ncols = len(header)
        # A StatisticsCollector (ingest/statistics.py) receives the values of every loaded row.
        self.collector = collector
        self._metric_pos = {m: header.index(m) for m in contract.metrics if m in header}
        self._device_pos = header.index("device") if "device" in header else None
        self._numbers: dict[str, list] = {}
        self._true = contract.true_literals
        self.file_id = file_id
        self.copy_columns = list(header) + (["file_id"] if file_id is not None else [])
        self.copy_kinds = [_COPY_KINDS[c.type] for c in self.columns] + (
            [copybinary.INT8] if file_id is not None else [])
        self._started = self._finished = False
        self.fast_paths = ("arrow", "columns")  # tests narrow this to compare the paths
        self.blocks: Counter[str] = Counter()  # blocks checked per path
        self._arrow_convert = pa_csv.ConvertOptions(
            column_types={name: pa.string() for name in header}, strings_can_be_null=False,
            quoted_strings_can_be_null=False, check_utf8=True)
        self._arrow_booleans = pa.array(sorted(contract.booleans), type=pa.string())
        self._arrow_true = pa.array(sorted(contract.true_literals), type=pa.string())
        self._bounds: dict[str, tuple[float, float]] = {}
        for column in self.columns:
            if column.type in ("number", "epoch"):
                low = column.min if strict and column.min is not None else -math.inf
                high = column.max if strict and column.max is not None else math.inf
                if column.type == "epoch":
                    low, high = max(low, EPOCH_HARD_MIN), min(high, EPOCH_HARD_MAX)
                self._bounds[column.name] = (low, high)

    def readable(self) -> bool:
        return True

    @property
    def loading(self) -> bool:
        return self.load_after_errors or self.stats.error_count == 0

    def read(self, size: int = -1) -> bytes:  # type: ignore[override]
        """The next block's binary COPY data (the first also carries the format's
        header, the last its trailer); b"" once the file is done."""
        if self._finished:
            return b""
        prefix = b"" if self._started else copybinary.HEADER
        self._started = True
        for lines, has_marker in self._chunks:
            first = self._next_line
            self._next_line += len(lines)
            self.stats.bytes_read = self._fh.tell()
            out = self._process(first, lines, has_marker)
            if self.on_progress and self.stats.rows_total - self._last_progress >= self.progress_every:
                self._last_progress = self.stats.rows_total
                self.on_progress(self.stats)
            if out and self.loading:
                return prefix + out
        self._finished = True
        return prefix + copybinary.TRAILER

    def step(self) -> bool:
        """Validate one block without loading; False once the file is done."""
        for lines, has_marker in self._chunks:
            first = self._next_line
            self._next_line += len(lines)
            self._process(first, lines, has_marker)
            return True
        return False

    def drain(self) -> PassStats:
        """Validate the rest without loading (for reports)."""
        while self.read():
            pass
        return self.stats

    # ------------------------------------------------------------ fast path
    def _process(self, first: int, lines: list, has_marker: bool) -> bytes:
        """Check a block of lines as columns at C speed; only the rows that a
        column check flags go through the row-by-row rules (the authority)."""
        n = len(lines)
        if not has_marker and max(map(len, lines)) <= self.max_line:
            data = b"\n".join(lines)
            if "arrow" in self.fast_paths:
                out = self._process_arrow(first, data, lines)
                if out is not None:
                    self.blocks["arrow"] += 1
                    return out
            if "columns" not in self.fast_paths:
                self.blocks["rows"] += 1
                return self._encode_rows(self._process_slowly(first, lines))
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                text = None
            if text is not None:
                if "\r" in text:
                    text = text.replace("\r\n", "\n")
                if "\r" not in text and "\x00" not in text:
                    split = self._split_columns(text, n, quotes=data.count(b'"'))
                    if split is not None:
                        str_lines, kept, columns, flagged = split
                        suspects = self._columns_suspects(columns)
                        if suspects is not None:
                            body = b""
                            if self.loading:
                                if self.collector is not None:
                                    self._collect(columns, suspects)
                                body = self._encode_block(columns, suspects)
                            if kept is not None:
                                suspects = {kept[i] for i in suspects}
                            flagged |= suspects
                            self.blocks["columns"] += 1
                            return self._emit(first, str_lines, flagged, body)
        self.blocks["rows"] += 1
        return self._encode_rows(self._process_slowly(first, lines))

    # ------------------------------------------------------------ Arrow path
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

    def _collect(self, columns: list, suspects: set[int]) -> None:
        """Hand the block's loaded values (the numbers parsed for the range checks;
        suspects are left to the row rules, which add the valid ones) to the collector."""
        if self._device_pos is None:
            return
        self.collector.add_block(
            columns[self._device_pos], {m: self._numbers[m] for m in self._metric_pos}, suspects)

    def _emit(self, first: int, lines: list, flagged: set[int], body: bytes) -> bytes:
        """Count the block's rows that passed the column checks (already encoded in
        `body`) and send each flagged line through the row rules on its own."""
        good = len(lines) - len(flagged)
        self.stats.rows_total += good
        self.stats.rows_valid += good
        rechecked: list[list[str]] = []
        for index in sorted(flagged):
            line = lines[index]
            rechecked += self._process_slowly(first + index, [line if isinstance(line, bytes) else line.encode()])
        if not self.loading:
            return b""
        return body + self._encode_rows(rechecked)

    def _constant_fields(self, n: int) -> list[np.ndarray]:
        return [np.full(n, self.file_id, dtype=np.int64)] if self.file_id is not None else []

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

    # ------------------------------------------------------------ slow path
    def _error(self, line: int, column: str | None, value: Any, rule: str, message: str) -> None:
        self.stats.error_count += 1
        if len(self.stats.errors) < self.max_errors:
            self.stats.errors.append(
                {"line": line, "column": column, "value": _preview(value), "rule": rule, "message": message}
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
            if isinstance(item, _Overlong):
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
