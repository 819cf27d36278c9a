"""The streaming validator on its own (pure logic): the column-at-a-time fast
path must decide exactly as the row-by-row rules do."""

from __future__ import annotations

import csv
import io
import random

import pytest

from ingest import copybinary
from ingest.contract import Contract, RowStream, read_header

HEADER = '"ts","device","co","humidity","light","lpg","motion","smoke","temp"\n'
ODD_VALUES = {
    0: ["", "abc", "1.0E20", ".5e9", "+1600000000", "1_600_000_000", "nan", "1600000000 "],
    1: ["", "   ", "x" * 70, "dev,comma", 'dev "q"'],
    2: ["", "-0.1", "1.5", "1e400", "0.5", "01"],
    4: ["maybe", "", "true", "1"],
    8: ["-100.0", "50.0", "-50", "inf", "20"],
}


def good_row(rng: random.Random) -> list[str]:
    return [f"{1594512094 + rng.random() * 1e5!r}", rng.choice(["a:b", "c:d"]), f"{rng.random():.6f}",
            f"{rng.uniform(0, 100)!r}", rng.choice(["True", "False"]), f"{rng.random() / 10!r}",
            rng.choice(["True", "False"]), f"{rng.random() / 5!r}", f"{rng.uniform(-50, 50)!r}"]


def make_file(rng: random.Random, n: int, *, quoted: bool, plain: bool = False) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL if quoted else csv.QUOTE_MINIMAL, lineterminator="\n")
    buffer.write(HEADER)
    for _ in range(n):
        row = good_row(rng)
        roll = rng.random()
        if roll < 0.05:
            column = rng.choice(list(ODD_VALUES))
            choices = [v for v in ODD_VALUES[column] if not (plain and ("," in v or '"' in v))]
            row[column] = rng.choice(choices)
        elif roll < 0.06:
            row = row[:rng.randrange(1, 9)]
        elif roll < 0.065:
            row = []
        writer.writerow(row)
    return buffer.getvalue().encode()


PATHS = {"arrow": ("arrow",), "columns": ("columns",), "rows": ()}


def run(data: bytes, *, force_slow: bool = False, strict: bool = True, block: int | None = None,
        path: str | None = None):
    contract = Contract.from_settings()
    fh = io.BytesIO(data)
    header = read_header(fh, contract, max_line=65536)
    stream = RowStream(fh, header=header, contract=contract, strict=strict, max_errors=10**6)
    path = path or ("rows" if force_slow else "arrow")
    stream.fast_paths = PATHS[path]
    rows = sorted(loaded_rows(stream))
    if path == "arrow":
        assert set(stream.blocks) == {"arrow"}, stream.blocks  # it checked every block itself
    return stream.stats, rows


def loaded_rows(stream: RowStream) -> list[tuple]:
    """What the stream sends to COPY, decoded from the binary format."""
    out = []
    while chunk := stream.read():
        out.append(chunk)
    return copybinary.decode(b"".join(out), stream.copy_kinds)


@pytest.mark.parametrize("path", ["arrow", "columns"])
@pytest.mark.parametrize("quoted", [True, False])
@pytest.mark.parametrize("strict", [True, False])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fast_path_decides_like_the_row_rules(seed, quoted, strict, path):
    data = make_file(random.Random(seed), 3000, quoted=quoted)
    fast_stats, fast_rows = run(data, path=path, strict=strict)
    slow_stats, slow_rows = run(data, force_slow=True, strict=strict)
    assert fast_rows == slow_rows
    assert (fast_stats.rows_total, fast_stats.rows_valid, fast_stats.rows_rejected, fast_stats.error_count) == (
        slow_stats.rows_total, slow_stats.rows_valid, slow_stats.rows_rejected, slow_stats.error_count)
    assert fast_stats.errors == slow_stats.errors
    assert fast_stats.rows_rejected > 0


@pytest.mark.parametrize("path", ["arrow", "columns"])
@pytest.mark.parametrize("seed", [4, 5])
def test_fast_path_on_unquoted_files(seed, path):
    data = make_file(random.Random(seed), 3000, quoted=False, plain=True)
    assert b'"' not in data.split(b"\n", 1)[1]
    fast_stats, fast_rows = run(data, path=path)
    slow_stats, slow_rows = run(data, force_slow=True)
    assert fast_rows == slow_rows and fast_stats.errors == slow_stats.errors
    assert fast_stats.rows_rejected == slow_stats.rows_rejected > 0


def test_loaded_values_are_the_parsed_ones():
    data = (HEADER + '"1.6E9","dev, with comma","0.1","50","True","0.1","False","0.1","20"\n'
            '"1.6E9","dév-ü","1e-3","0","false","0","1","0","-0.5"\n').encode()
    expected = [(1.6e9, "dev, with comma", 0.1, 50.0, True, 0.1, False, 0.1, 20.0),
                (1.6e9, "dév-ü", 0.001, 0.0, False, 0.0, True, 0.0, -0.5)]
    for path in PATHS:
        _, rows = run(data, path=path)
        assert rows == sorted(expected)


@pytest.mark.parametrize("devices", [["a:b", "c:d"], ["a", "bcd", "é", ""]])
def test_binary_encoding_round_trips(devices):
    """Equal-length text takes the structured-array layout, mixed lengths the scattered one."""
    import numpy as np

    kinds = [copybinary.FLOAT8, copybinary.TEXT, copybinary.BOOL, copybinary.INT8]
    n = 50
    values = [np.arange(n) / 3, copybinary.Text.of([devices[i % len(devices)] for i in range(n)]),
              np.arange(n) % 3 == 0, np.full(n, 7, dtype=np.int64)]
    data = copybinary.HEADER + copybinary.encode(kinds, values, n) + copybinary.TRAILER
    assert copybinary.decode(data, kinds) == [
        (i / 3, devices[i % len(devices)], i % 3 == 0, 7) for i in range(n)]


@pytest.mark.parametrize("quoted", [True, False])
@pytest.mark.parametrize("strict", [True, False])
def test_statistics_of_the_loading_pass_match_the_loaded_rows(quoted, strict):
    """The per-file statistics collected in the pass (fast path blocks plus rows
    the row rules accepted) describe exactly the rows sent to COPY."""
    import statistics as pystats

    from ingest.statistics import StatisticsCollector

    data = make_file(random.Random(11), 3000, quoted=quoted)
    contract = Contract.from_settings()
    for path in PATHS:
        fh = io.BytesIO(data)
        header = read_header(fh, contract, max_line=65536)
        collector = StatisticsCollector(contract.metrics)
        stream = RowStream(fh, header=header, contract=contract, strict=strict, max_errors=10**6,
                           collector=collector)
        stream.fast_paths = PATHS[path]
        values: dict = {}
        for loaded in loaded_rows(stream):
            row = dict(zip(header, loaded))
            for metric in contract.metrics:
                values.setdefault((row["device"], metric), []).append(row[metric])
        got = {(r.device, r.metric): r for r in collector.results()}
        assert set(got) == set(values)
        for key, v in values.items():
            r = got[key]
            assert (r.count, r.min, r.max) == (len(v), min(v), max(v)), key
            assert r.mean == pytest.approx(pystats.fmean(v), rel=1e-12)
            assert r.std == pytest.approx(pystats.stdev(v), rel=1e-9)
            assert r.median == pystats.median(v)
