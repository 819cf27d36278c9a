"""Sensor CSV files in the ingestion contract's shape: the one place the demo data makes
their rows, for the sample files (samples.py) and the files `demo_traffic` drops into
the inbox (traffic.py).

The columns are the console's contract (INGEST_CONTRACT); every value a row gets here
is inside the contract's ranges, so a file is quarantined only for the broken rows its
caller puts in on purpose.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterable
from typing import TextIO

SENSOR_COLUMNS = ["ts", "device", "co", "humidity", "light", "lpg", "motion", "smoke", "temp"]
DEVICES = ["00:0f:00:70:91:0a", "1c:bf:ce:15:ec:4d", "b8:27:eb:bf:9d:51"]


def sensor_row(rng: random.Random, ts: float, device: str) -> list[str]:
    """One valid reading of `device` at epoch second `ts`."""
    return [
        repr(ts), device, f"{rng.uniform(0.001, 0.01):.6f}", f"{rng.uniform(40, 80):.1f}",
        rng.choice(["True", "False"]), f"{rng.uniform(0.002, 0.01):.6f}", rng.choice(["True", "False"]),
        f"{rng.uniform(0.005, 0.03):.6f}", f"{rng.uniform(18, 30):.1f}",
    ]


def sensor_csv_write(out: TextIO, rows: Iterable[list[str]]) -> None:
    """The header and `rows`, every field quoted, as the contract's writers send them."""
    writer = csv.writer(out, quoting=csv.QUOTE_ALL)
    writer.writerow(SENSOR_COLUMNS)
    writer.writerows(rows)
