"""The sensor CSV contract and its streaming validator, one module per responsibility:

    rules.py    the columns, their types, limits and messages (declared once, in
                settings.INGEST_CONTRACT); the header check; the row rules' verdict
                on one value, which is the authority
    lines.py    a binary file as bounded blocks of lines (an overlong line is a marker)
    stream.py   RowStream: one pass over a file, binary COPY data out; it sends each
                block down the fastest path that can take it:
    arrow.py      1. the Arrow path (Arrow's C++ CSV parser and compute kernels)
    columns.py    2. the column path (string splitting, numpy, orjson)
    rows.py       3. the row path (the rules row by row, each error with line and column)

Called by: ingest.loading, ingest.services, tests/ingest and bench/ingest.py, through
the names below (import them from `ingest.contract`, not from the modules).
"""

from .rules import Column, Contract, FileRejected, check_value, read_header
from .stats import PassStats
from .stream import RowStream

__all__ = ["Column", "Contract", "FileRejected", "PassStats", "RowStream", "check_value", "read_header"]
