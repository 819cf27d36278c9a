"""One rule for every CSV the console exports: text a spreadsheet would run
as a formula gets a leading quote. Numbers are left to the callers, which
write them as numbers (a negative temperature stays -3.5)."""

from __future__ import annotations

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralize_cell(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value
