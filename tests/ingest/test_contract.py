"""The streaming validator on its own (pure logic): the column-at-a-time fast
path must decide exactly as the row-by-row rules do."""

from __future__ import annotations

import csv
import io
import random

import pytest

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


def run(data: bytes, *, force_slow: bool, strict: bool = True, block: int | None = None):
    contract = Contract.from_settings()
    fh = io.BytesIO(data)
    header = read_header(fh, contract, max_line=65536)
    stream = RowStream(fh, header=header, contract=contract, strict=strict, max_errors=10**6)
    if force_slow:
        stream._split_columns = lambda text, n, quotes: None
    out = []
    while chunk := stream.read():
        out.append(chunk)
    rows = sorted(tuple(r) for r in csv.reader(io.StringIO("".join(out))))
    return stream.stats, rows


@pytest.mark.parametrize("quoted", [True, False])
@pytest.mark.parametrize("strict", [True, False])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fast_path_decides_like_the_row_rules(seed, quoted, strict):
    data = make_file(random.Random(seed), 3000, quoted=quoted)
    fast_stats, fast_rows = run(data, force_slow=False, strict=strict)
    slow_stats, slow_rows = run(data, force_slow=True, strict=strict)
    assert fast_rows == slow_rows
    assert (fast_stats.rows_total, fast_stats.rows_valid, fast_stats.rows_rejected, fast_stats.error_count) == (
        slow_stats.rows_total, slow_stats.rows_valid, slow_stats.rows_rejected, slow_stats.error_count)
    assert fast_stats.errors == slow_stats.errors
    assert fast_stats.rows_rejected > 0


@pytest.mark.parametrize("seed", [4, 5])
def test_fast_path_on_unquoted_files(seed):
    data = make_file(random.Random(seed), 3000, quoted=False, plain=True)
    assert b'"' not in data.split(b"\n", 1)[1]
    fast_stats, fast_rows = run(data, force_slow=False)
    slow_stats, slow_rows = run(data, force_slow=True)
    assert fast_rows == slow_rows and fast_stats.errors == slow_stats.errors
    assert fast_stats.rows_rejected == slow_stats.rows_rejected > 0


def test_loaded_text_is_what_postgres_reads_back():
    data = (HEADER + '"1.6E9","dev, with comma","0.1","50","True","0.1","False","0.1","20"\n').encode()
    _, rows = run(data, force_slow=False)
    assert rows == [("1.6E9", "dev, with comma", "0.1", "50", "True", "0.1", "False", "0.1", "20")]


@pytest.mark.parametrize("quoted", [True, False])
@pytest.mark.parametrize("strict", [True, False])
def test_statistics_of_the_loading_pass_match_the_loaded_rows(quoted, strict):
    """The per-file statistics collected in the pass (fast path blocks plus rows
    the row rules accepted) describe exactly the rows sent to COPY."""
    import statistics as pystats

    from ingest.statistics import StatisticsCollector

    data = make_file(random.Random(11), 3000, quoted=quoted)
    contract = Contract.from_settings()
    for force_slow in (False, True):
        fh = io.BytesIO(data)
        header = read_header(fh, contract, max_line=65536)
        collector = StatisticsCollector(contract.metrics)
        stream = RowStream(fh, header=header, contract=contract, strict=strict, max_errors=10**6,
                           collector=collector)
        if force_slow:
            stream._split_columns = lambda text, n, quotes: None
        out = []
        while chunk := stream.read():
            out.append(chunk)
        values: dict = {}
        for row in csv.DictReader(io.StringIO(",".join(header) + "\n" + "".join(out)), fieldnames=None):
            for metric in contract.metrics:
                values.setdefault((row["device"], metric), []).append(float(row[metric]))
        got = {(r.device, r.metric): r for r in collector.results()}
        assert set(got) == set(values)
        for key, v in values.items():
            r = got[key]
            assert (r.count, r.min, r.max) == (len(v), min(v), max(v)), key
            assert r.mean == pytest.approx(pystats.fmean(v), rel=1e-12)
            assert r.std == pytest.approx(pystats.stdev(v), rel=1e-9)
            assert r.median == pystats.median(v)
