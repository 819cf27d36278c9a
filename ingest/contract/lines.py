"""A binary file as bounded blocks of lines: what every validation path reads.

Memory stays bounded whatever the file holds: a line longer than the limit is
replaced by an `Overlong` marker (its first bytes kept for the error) while the
rest of it is skipped.

Called by: stream.RowStream (reading), rows.RowPath (reporting overlong lines).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from .rules import VALUE_PREVIEW

BLOCK_BYTES = 2 * 1024 * 1024  # 2 MB: 20k-row blocks keep the transient objects of a block near 20 MB


class Overlong:
    """Stands in for a line longer than the limit (its bytes are not kept)."""

    __slots__ = ("length", "preview")

    def __init__(self, preview: bytes) -> None:
        self.preview = preview
        self.length = len(preview)


def line_chunks(fh: BinaryIO, *, max_line: int, block: int = BLOCK_BYTES) -> Iterator[tuple[list, bool]]:
    """Split a binary stream into lists of lines (without b"\\n"), one block at a
    time. Memory stays bounded: a line longer than `max_line` is replaced by an
    Overlong marker while the rest of it is skipped. Yields (lines, has_marker)."""
    carry = b""
    skipping: Overlong | None = None
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
            skipping = Overlong(carry[:VALUE_PREVIEW])
            skipping.length = len(carry)
            carry = b""
        out.extend(parts)
        if out:
            yield out, marker
    if skipping is not None:
        yield [skipping], True
    elif carry:
        yield [carry], False
