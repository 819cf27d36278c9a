"""Generated CSV files through the real file path: each one loaded or quarantined with a reason.

FUZZ_FILES files drawn by Hypothesis (a header that is right, shuffled, short
or wrong; cells that are valid, empty, huge, NUL, quotes, formulas; odd line
endings; raw bytes) are dropped in the inbox, announced on file_events,
registered by the real `files` consumer and processed by a real Celery
worker. Every file must end loaded (with exactly its valid rows), quarantined
with a reason, or a duplicate of another; the worker never dies.
"""

from __future__ import annotations

from hypothesis import strategies as st

from ingest.models import IngestedFile, RawSensorReading
from ingest.services import file_event
from streams.kafka.producer import produce_and_wait
from tests.conftest import wait_until
from tests.fuzz.strategies import FILES, generate, nasty_number, nasty_text
from tests.ingest.conftest import ROW

Status = IngestedFile.Status
COLUMNS = ["ts", "device", "co", "humidity", "light", "lpg", "motion", "smoke", "temp"]
GOOD = dict(zip(COLUMNS, ROW.strip().replace('"', "").split(",")))


def _quote(cell: str) -> str:
    return '"' + cell.replace('"', '""') + '"' if any(c in cell for c in ',"\n\r') else cell


header = st.one_of(
    st.just(COLUMNS),
    st.permutations(COLUMNS),
    st.lists(st.sampled_from(COLUMNS + ["pressure", "", "TS"]), min_size=1, max_size=11),
)
cell = st.one_of(
    st.sampled_from(list(GOOD.values())),
    nasty_text,
    nasty_number.map(repr),
    st.sampled_from(["", "True", "nan", "inf", "-0", "1e309", "1.5945120943859746E9", "0.5"]),
)


@st.composite
def csv_files(draw) -> bytes:
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(st.binary(max_size=300))
    if kind <= 3:  # a clean file (its own timestamps, so no two are duplicates)
        start = draw(st.integers(1_000_000_000, 2_000_000_000))
        n = draw(st.integers(1, 20))
        body = "".join(",".join([f"{start + i}.5", *(GOOD[c] for c in COLUMNS[1:])]) + "\n" for i in range(n))
        return (",".join(COLUMNS) + "\n" + body).encode()
    names = draw(header)
    ending = draw(st.sampled_from(["\n", "\r\n", "\n", "\r"]))
    lines = [",".join(_quote(n) for n in names)]
    for _ in range(draw(st.integers(0, 12))):
        if draw(st.booleans()):
            values = [GOOD.get(n, "1") for n in names]  # a valid row (when the header is)
        else:
            values = [draw(cell) for _n in names]
            if draw(st.integers(0, 5)) == 0:
                values = values[: draw(st.integers(0, len(values)))]  # a short row
        lines.append(",".join(_quote(v) for v in values))
    return (ending.join(lines) + ending).encode("utf-8", "surrogatepass")


def test_generated_files_are_loaded_or_quarantined_with_a_reason(kafka, processes, inbox):
    files = generate(csv_files(), FILES)
    names = []
    for i, content in enumerate(files):
        names.append(inbox.drop(f"fuzz-{i:04d}.csv", content))
    env = inbox.env()
    consumer = processes.consumer("files", "--batch-time", "100", **env)
    worker = processes.celery_worker(**env)
    produce_and_wait([file_event(file_path=n, file_name=n) for n in names], timeout=60)

    def settled() -> bool:
        assert consumer.poll() is None, processes.log(consumer)[-2000:]
        assert worker.poll() is None, processes.log(worker)[-2000:]
        done = IngestedFile.objects.exclude(status__in=IngestedFile.IN_PROGRESS).count()
        return done == len(names) and IngestedFile.objects.count() == len(names)

    wait_until(settled, timeout=240, message=f"all {len(names)} files to finish")
    outcomes: dict[str, int] = {}
    for ingested in IngestedFile.objects.all():
        outcomes[ingested.status] = outcomes.get(ingested.status, 0) + 1
        assert ingested.status in (Status.LOADED, Status.QUARANTINED, Status.DUPLICATE), (
            ingested.path, ingested.status, ingested.reason)
        if ingested.status == Status.QUARANTINED:
            assert ingested.reason and ingested.quarantine_id, ingested.path
            assert ingested.quarantine.errors, ingested.path
        if ingested.status == Status.LOADED:
            assert RawSensorReading.objects.filter(file=ingested).count() == ingested.rows_loaded == ingested.rows_valid
    assert worker.poll() is None and consumer.poll() is None
    print(f"fuzz files: generated={len(names)} " + " ".join(f"{k}={v}" for k, v in sorted(outcomes.items())))
