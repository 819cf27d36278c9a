"""PostgreSQL's binary COPY format, built a block of rows at a time with numpy.

The validator has already parsed every number of a block (to check ranges and
collect statistics), so the load sends those doubles as they are instead of
text that PostgreSQL would parse again: COPY in binary format into the raw
table took 1.3 s for a million rows where the same rows as CSV took 3.2 s
(docs/ingest.md). A block's tuples are laid out with one numpy structured
array when its text values have the same byte length (sensor ids usually do),
else scattered into a byte buffer by computed offsets; either way no Python
code runs per row.

Format: an 11-byte signature, flags and header-extension length (int32 each),
then per tuple an int16 field count and per field an int32 byte length and the
value (float8: IEEE 754 big-endian; bool: one byte; text: UTF-8; int8:
big-endian), and an int16 -1 at the end. All integers are big-endian.

Called by: ingest.contract (the validation paths encode the rows they accept).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
TRAILER = struct.pack(">h", -1)

FLOAT8, BOOL, TEXT, INT8 = "float8", "bool", "text", "int8"
_FIXED = {FLOAT8: (">f8", 8), BOOL: ("?", 1), INT8: (">i8", 8)}


@dataclass(frozen=True)
class Text:
    """A block's text values: UTF-8 bytes back to back, and each value's byte length."""

    data: bytes
    lengths: np.ndarray  # int64

    @classmethod
    def of(cls, values: Sequence[str]) -> "Text":
        joined = "".join(values)
        if joined.isascii():
            return cls(joined.encode("ascii"), np.fromiter(map(len, values), np.int64, count=len(values)))
        encoded = [v.encode("utf-8") for v in values]
        return cls(b"".join(encoded), np.fromiter(map(len, encoded), np.int64, count=len(encoded)))


    @classmethod
    def of_arrow(cls, array) -> "Text":
        """From an Arrow string array, through its offset and data buffers."""
        offsets = np.frombuffer(array.buffers()[1], dtype=np.int32)[array.offset:array.offset + len(array) + 1]
        start, end = int(offsets[0]), int(offsets[-1])
        buffer = array.buffers()[2]
        data = memoryview(buffer)[start:end].tobytes() if buffer is not None and end > start else b""
        return cls(data, np.diff(offsets).astype(np.int64))


Field = np.ndarray | Text  # one column of a block, in that column's COPY type


def encode(kinds: Sequence[str], fields: Sequence[Field], n: int) -> bytes:
    """The tuples of `n` rows; fields[i] holds column i's values (numpy arrays for
    float8 / bool / int8, Text for text), in the order of `kinds`."""
    if n == 0:
        return b""
    texts = [f for f in fields if isinstance(f, Text)]
    uniform = all(t.lengths[0] > 0 and (t.lengths == t.lengths[0]).all() for t in texts)
    return _encode_uniform(kinds, fields, n) if uniform else _encode_scattered(kinds, fields, n)


def _encode_uniform(kinds: Sequence[str], fields: Sequence[Field], n: int) -> bytes:
    layout: list[tuple[str, str]] = [("count", ">i2")]
    for i, (kind, field) in enumerate(zip(kinds, fields)):
        width = int(field.lengths[0]) if kind == TEXT else _FIXED[kind][1]
        layout += [(f"l{i}", ">i4"), (f"v{i}", f"S{width}" if kind == TEXT else _FIXED[kind][0])]
    rows = np.empty(n, dtype=np.dtype(layout))
    rows["count"] = len(kinds)
    for i, (kind, field) in enumerate(zip(kinds, fields)):
        if kind == TEXT:
            width = int(field.lengths[0])
            rows[f"l{i}"] = width
            rows[f"v{i}"] = np.frombuffer(field.data, dtype=f"S{width}")
        else:
            rows[f"l{i}"] = _FIXED[kind][1]
            rows[f"v{i}"] = field
    return rows.tobytes()


def _encode_scattered(kinds: Sequence[str], fields: Sequence[Field], n: int) -> bytes:
    sizes = np.full(n, 2, dtype=np.int64)
    for kind, field in zip(kinds, fields):
        sizes += 4 + (field.lengths if kind == TEXT else _FIXED[kind][1])
    starts = np.zeros(n, dtype=np.int64)
    np.cumsum(sizes[:-1], out=starts[1:])
    out = np.empty(int(sizes.sum()), dtype=np.uint8)
    _put(out, starts, np.full(n, len(kinds), dtype=">i2"))
    cursor = starts + 2
    for kind, field in zip(kinds, fields):
        if kind == TEXT:
            _put(out, cursor, field.lengths.astype(">i4"))
            total = len(field.data)
            if total:
                first = np.zeros(n, dtype=np.int64)
                np.cumsum(field.lengths[:-1], out=first[1:])
                where = np.repeat(cursor + 4 - first, field.lengths) + np.arange(total)
                out[where] = np.frombuffer(field.data, dtype=np.uint8)
            cursor = cursor + 4 + field.lengths
        else:
            dtype, width = _FIXED[kind]
            _put(out, cursor, np.full(n, width, dtype=">i4"))
            _put(out, cursor + 4, np.asarray(field).astype(dtype))
            cursor = cursor + 4 + width
    return out.tobytes()


def _put(out: np.ndarray, positions: np.ndarray, values: np.ndarray) -> None:
    """Write each value's bytes at its position."""
    width = values.dtype.itemsize
    out[positions[:, None] + np.arange(width)] = values.view(np.uint8).reshape(-1, width)


def decode(data: bytes, kinds: Sequence[str]) -> list[tuple]:
    """The rows of a whole binary COPY stream (for tests and troubleshooting)."""
    if not data.startswith(HEADER):
        raise ValueError("not a binary COPY stream (signature missing)")
    view = memoryview(data)
    pos = len(HEADER)
    rows: list[tuple] = []
    while True:
        (count,) = struct.unpack_from(">h", view, pos)
        pos += 2
        if count == -1:
            if pos != len(data):
                raise ValueError(f"{len(data) - pos} bytes after the trailer")
            return rows
        if count != len(kinds):
            raise ValueError(f"tuple {len(rows)} has {count} fields, expected {len(kinds)}")
        row = []
        for kind in kinds:
            (length,) = struct.unpack_from(">i", view, pos)
            pos += 4
            raw = bytes(view[pos:pos + length])
            pos += length
            if kind == FLOAT8:
                row.append(struct.unpack(">d", raw)[0])
            elif kind == INT8:
                row.append(struct.unpack(">q", raw)[0])
            elif kind == BOOL:
                row.append(raw == b"\x01")
            else:
                row.append(raw.decode("utf-8"))
        rows.append(tuple(row))
