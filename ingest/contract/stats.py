"""What one pass over a file counted: rows, rejections, bytes and the first errors.

Filled by every validation path (arrow.py, columns.py, rows.py) and read by
stream.py's callers; imports nothing of ingest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class PassStats:
    rows_total: int = 0
    rows_valid: int = 0
    rows_rejected: int = 0
    blank_lines: int = 0
    bytes_read: int = 0
    error_count: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
