"""The one-pass streaming validator that feeds PostgreSQL COPY (in binary
format: ingest/copybinary.py): `RowStream` reads a file after its header in
blocks and sends each block down the fastest path that can take it:

1. the Arrow path (arrow.py): Arrow's CSV parser and compute kernels;
2. the column path (columns.py): string splitting, numpy, orjson, min/max;
3. the row path (rows.py): the row-by-row rules, the authority.

Only the rows a block-level check cannot vouch for go through the row rules,
and the block checks are strictly narrower than those rules, so they never
accept what the row rules would reject.

Called by: ingest.loading (COPY), ingest.services (loads, rejected rows of
quarantined files), tests and bench/ingest.py.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Callable
from typing import Any, BinaryIO

import numpy as np
from django.conf import settings

from .. import copybinary
from .arrow import ArrowPath
from .columns import ColumnPath
from .lines import line_chunks
from .rows import RowPath
from .rules import Contract
from .stats import PassStats


_COPY_KINDS = {"number": copybinary.FLOAT8, "epoch": copybinary.FLOAT8, "boolean": copybinary.BOOL,
               "text": copybinary.TEXT}


class RowStream(ArrowPath, ColumnPath, RowPath, io.RawIOBase):
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
        self._arrow_setup(header, contract)

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

    def _process(self, first: int, lines: list, has_marker: bool) -> bytes:
        """Check a block of lines on the fastest path that takes it; only the rows
        that a block check flags go through the row-by-row rules (the authority)."""
        if not has_marker and max(map(len, lines)) <= self.max_line:
            data = b"\n".join(lines)
            if "arrow" in self.fast_paths:
                out = self._process_arrow(first, data, lines)
                if out is not None:
                    self.blocks["arrow"] += 1
                    return out
            if "columns" in self.fast_paths:
                out = self._process_columns(first, data, lines)
                if out is not None:
                    self.blocks["columns"] += 1
                    return out
        self.blocks["rows"] += 1
        return self._encode_rows(self._process_slowly(first, lines))

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
