"""Bad input: each kind ends with a specific recorded reason, nothing lost."""

from __future__ import annotations

import pytest

from ingest.models import IngestedFile, RawSensorReading
from quarantine.models import QuarantineRecord
from tests.ingest.conftest import HEADER, ROW, rows

pytestmark = pytest.mark.django_db
Status = IngestedFile.Status


def quarantined(inbox, ingested) -> QuarantineRecord:
    assert ingested.status == Status.QUARANTINED, ingested.reason
    assert RawSensorReading.objects.filter(file=ingested).count() == 0
    assert not (inbox.root / ingested.path).exists()
    record = ingested.quarantine
    assert record.source == "file" and record.file_name == ingested.name
    assert (inbox.quarantine / record.file_path.rsplit("/", 1)[-1]).is_file()
    return record


def test_empty_file(inbox):
    ingested = inbox.process(inbox.drop("empty.csv", b""))
    record = quarantined(inbox, ingested)
    assert ingested.reason == "the file is empty"
    assert record.errors[0]["rule"] == "empty"


def test_header_only(inbox):
    ingested = inbox.process(inbox.drop("header.csv", HEADER))
    quarantined(inbox, ingested)
    assert ingested.reason == "no data rows: the file has a header only"
    assert ingested.errors[0]["rule"] == "no_rows"


def test_missing_column(inbox):
    text = '"ts","device","co","humidity","light","lpg","motion","smoke"\n"1.6E9","d","0.1","50","True","0.1","False","0.1"\n'
    ingested = inbox.process(inbox.drop("missing.csv", text))
    quarantined(inbox, ingested)
    assert ingested.reason == "header: missing column(s): temp"
    assert ingested.errors == [{"line": 1, "column": "temp", "value": "", "rule": "header", "message": "missing column"}]


def test_extra_column(inbox):
    text = HEADER.rstrip("\n") + ',"pressure"\n' + ROW.rstrip("\n") + ',"1013"\n'
    ingested = inbox.process(inbox.drop("extra.csv", text))
    quarantined(inbox, ingested)
    assert ingested.reason == "header: unexpected column(s): pressure"
    assert ingested.errors[0]["rule"] == "header" and ingested.errors[0]["column"] == "pressure"


def test_reordered_columns_load_by_header(inbox):
    text = "temp,device,ts,co,humidity,light,lpg,motion,smoke\n22.5,dev-a,1594512094.5,0.004,51.0,True,0.007,False,0.02\n"
    ingested = inbox.process(inbox.drop("reordered.csv", text))
    assert ingested.status == Status.LOADED, ingested.reason
    row = RawSensorReading.objects.get(file=ingested)
    assert (row.temp, row.device, row.ts, row.co, row.light, row.motion) == (22.5, "dev-a", 1594512094.5, 0.004, True, False)
    assert row.recorded_at.year == 2020


def test_bom_crlf_and_case_tolerant_header(inbox):
    text = ("\ufeff" + ' TS ,"Device","CO","humidity","light","lpg","motion","smoke","TEMP"\r\n'
            + rows(3).replace("\n", "\r\n"))
    ingested = inbox.process(inbox.drop("bom-crlf.csv", text.encode("utf-8")))
    assert ingested.status == Status.LOADED, ingested.reason
    assert ingested.rows_loaded == 3
    assert RawSensorReading.objects.filter(file=ingested, device="b8:27:eb:bf:9d:51").count() == 3


def test_quoted_and_unquoted_fields(inbox):
    text = (HEADER + '1.6E9,"dev, with comma",0.1,50,True,0.1,False,0.1,20\n'
            + '"1.6E9","dev ""quoted""","0.1","50","False","0.1","True","0.1","20"\n'
            + '1.6E9,capteur-été,0.1,50,True,0.1,False,0.1,20\n')
    ingested = inbox.process(inbox.drop("quoted.csv", text))
    assert ingested.status == Status.LOADED, ingested.reason
    assert sorted(RawSensorReading.objects.values_list("device", flat=True)) == [
        "capteur-été", 'dev "quoted"', "dev, with comma"]


def test_non_utf8_bytes_are_reported_by_line(inbox):
    data = (HEADER + rows(2)).encode() + b'"1.6E9","caf\xe9","0.1","50","True","0.1","False","0.1","20"\n' + rows(1).encode()
    ingested = inbox.process(inbox.drop("latin1.csv", data))
    quarantined(inbox, ingested)
    assert ingested.errors[0]["line"] == 4 and ingested.errors[0]["rule"] == "encoding"
    assert ingested.rows_total == 4 and ingested.rows_rejected == 1


def test_ten_megabyte_single_line(inbox):
    ingested = inbox.process(inbox.drop("one-line.csv", b"x" * (10 * 1024 * 1024)))
    quarantined(inbox, ingested)
    assert ingested.errors[0]["rule"] == "line_length"
    assert "header line is longer than" in ingested.reason


def test_ten_megabyte_data_line(inbox):
    data = (HEADER + rows(1)).encode() + b'"' + b"9" * (10 * 1024 * 1024) + b'"\n' + rows(1).encode()
    ingested = inbox.process(inbox.drop("long-row.csv", data))
    quarantined(inbox, ingested)
    assert [(e["line"], e["rule"]) for e in ingested.errors] == [(3, "line_length")]
    assert ingested.rows_total == 3 and ingested.rows_valid == 2


def test_binary_junk(inbox):
    junk = bytes(range(256)) * 64
    ingested = inbox.process(inbox.drop("junk.csv", junk))
    quarantined(inbox, ingested)
    assert ingested.reason == "the file is binary (NUL bytes in the header), not CSV text"


def test_bad_values_each_with_line_column_value_rule(inbox):
    text = (HEADER + rows(2)
            + '"1.6E9","d","0.1","50","maybe","0.1","False","0.1","20"\n'      # line 4: boolean
            + '"1.6E9","d","0.1","50","True","0.1","False","0.1","-100.0"\n'   # line 5: range
            + '"abc","d","0.1","50","True","0.1","False","0.1","20"\n'         # line 6: number
            + '"1.0E20","d","0.1","50","True","0.1","False","0.1","20"\n'      # line 7: ts window
            + '"1.6E9","","0.1","50","True","0.1","False","0.1","20"\n'        # line 8: device empty
            + '"1.6E9","d","0.1"\n')                                           # line 9: columns
    ingested = inbox.process(inbox.drop("values.csv", text))
    quarantined(inbox, ingested)
    got = [(e["line"], e["column"], e["value"], e["rule"]) for e in ingested.errors]
    assert got == [
        (4, "light", "maybe", "boolean"),
        (5, "temp", "-100.0", "range"),
        (6, "ts", "abc", "number"),
        (7, "ts", "1.0E20", "range"),
        (8, "device", "", "required"),
        (9, None, '"1.6E9","d","0.1"', "columns"),
    ]
    assert ingested.rows_total == 8 and ingested.rows_valid == 2 and ingested.error_count == 6


def test_errors_are_capped_but_counted(inbox, settings):
    settings.INGEST_MAX_ERRORS_KEPT = 5
    bad = '"1.6E9","d","7","50","True","0.1","False","0.1","20"\n' * 50
    ingested = inbox.process(inbox.drop("many.csv", HEADER + bad))
    record = quarantined(inbox, ingested)
    assert len(ingested.errors) == 5 and ingested.error_count == 50
    assert record.error_count == 50 and len(record.errors) == 5


def test_sample_file_statistics_match_an_independent_computation(inbox):
    import csv
    import statistics
    from collections import defaultdict

    from ingest.models import SensorAggregate
    from tests.ingest.conftest import SAMPLES

    ingested = inbox.process(inbox.drop("split_5.csv", SAMPLES / "split_5.csv"))
    assert ingested.status == Status.LOADED and ingested.rows_loaded == 10000
    values = defaultdict(list)
    with open(SAMPLES / "split_5.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            for metric in ("co", "humidity", "lpg", "smoke", "temp"):
                values[(row["device"], metric)].append(float(row[metric]))
    got = {(a.device, a.metric): a for a in SensorAggregate.objects.filter(file=ingested)}
    assert set(got) == set(values)
    for key, v in values.items():
        a = got[key]
        assert (a.count, a.min, a.max) == (len(v), min(v), max(v))
        assert a.mean == pytest.approx(statistics.fmean(v), rel=1e-12)
        assert a.std == pytest.approx(statistics.stdev(v), rel=1e-9)
        assert a.median == pytest.approx(statistics.median(v), rel=1e-12)
