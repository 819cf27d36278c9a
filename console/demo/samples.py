"""Sample data a newcomer can run the console on, written by `manage.py make_samples DIR`.

    DIR/sensors/sensors-day-1.csv     10,000 valid rows (three devices), the sensor contract's shape
    DIR/sensors/sensors-day-2.csv      5,000 valid rows
    DIR/sensors/sensors-broken.csv     1,000 rows, three of them broken (a word for a number, a
                                       humidity of 150 %, a row one field short): quarantined with
                                       line, column and rule
    DIR/factory/metrics.json          20 machine parameters, read every ~10 minutes over three days
    DIR/factory/workorder.json        cumulative production of products 0 and 1

The factory data has a planted answer for the correlation report: product 0's
output per hour rises with parameter 7, product 1's falls with parameter 3;
every other parameter is noise. Generation is seeded, so the files are the
same on every machine. The sensor rows are sensors.py's, like the demo traffic's.

Called by `manage.py make_samples` and bench/ingest.py (`sensor_samples`).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from .sensors import DEVICES, sensor_csv_write, sensor_row

START = 1_700_000_000  # 2023-11-14, an epoch second inside the contract's range
PARAMETERS = 20
PLANTED = {0: (7, 1.0), 1: (3, -1.0)}  # product -> (parameter, sign of its effect)


def _write_sensors(path: Path, rng: random.Random, *, rows: int, start: float,
                   broken: dict[int, list[str]] | None = None) -> None:
    """`rows` readings 1.5 s apart, the devices in turn; row i replaced by `broken[i]`."""
    broken = broken or {}

    def lines():
        for i in range(rows):
            row = sensor_row(rng, start + i * 1.5, DEVICES[i % len(DEVICES)])
            yield broken.get(i, row)

    with path.open("w", newline="") as fh:
        sensor_csv_write(fh, lines())


def sensor_samples(directory: Path, rng: random.Random) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    day1, day2, bad = (directory / n for n in ("sensors-day-1.csv", "sensors-day-2.csv", "sensors-broken.csv"))
    _write_sensors(day1, rng, rows=10_000, start=START)
    _write_sensors(day2, rng, rows=5_000, start=START + 86_400)
    good = sensor_row(rng, START + 2 * 86_400, DEVICES[0])
    _write_sensors(bad, rng, rows=1_000, start=START + 2 * 86_400, broken={
        99: good[:8] + ["warm"],                          # line 101: temp is a word
        499: good[:3] + ["150.0"] + good[4:],             # line 501: humidity out of range
        899: good[:8],                                    # line 901: a field short
    })
    return [day1, day2, bad]


def factory_samples(directory: Path, rng: random.Random) -> list[Path]:
    """Work orders every ~85 minutes; each parameter read every ~10 minutes. The planted
    parameter holds one value through each work-order interval, and the product's output
    in that interval follows it, so the as-of join pairs each rate with its cause."""
    directory.mkdir(parents=True, exist_ok=True)
    metrics: list[dict] = []
    workorders: list[dict] = []
    end = START + 3 * 86_400
    for product, (parameter, sign) in PLANTED.items():
        cumulative, t = 0.0, START + 600 * product
        workorders.append({"time": t, "product": product, "production": 0})
        while t < end:
            step = rng.randint(4_500, 5_700)
            level = rng.uniform(200, 800)
            # The planted parameter's readings inside (t, t + step], all at `level`.
            for when in range(t + rng.randint(30, 300), t + step, 600):
                metrics.append({"id": parameter, "val": level + rng.gauss(0, 2), "time": when})
            rate = 40 + sign * 0.05 * (level - 500) + rng.gauss(0, 1.5)  # units per hour
            cumulative += max(rate, 0.0) * step / 3600
            t += step
            workorders.append({"time": t, "product": product, "production": cumulative})
    planted = {p for p, _ in PLANTED.values()}
    for parameter in range(PARAMETERS):
        if parameter in planted:
            continue
        for when in range(START + rng.randint(0, 600), end, 600):
            metrics.append({"id": parameter, "val": rng.uniform(100, 900), "time": when})
    metrics.sort(key=lambda m: (m["time"], m["id"]))
    paths = [directory / "metrics.json", directory / "workorder.json"]
    paths[0].write_text(json.dumps(metrics, indent=1))
    paths[1].write_text(json.dumps(workorders, indent=1))
    return paths


def samples_write(directory: Path, *, seed: int = 2026) -> list[Path]:
    """Write every sample under `directory`; returns the files written."""
    rng = random.Random(seed)
    return sensor_samples(directory / "sensors", rng) + factory_samples(directory / "factory", rng)
