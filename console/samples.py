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
same on every machine.

Imports: the standard library only (the contract's column names are the
console's own, see INGEST_CONTRACT).
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

SENSOR_COLUMNS = ["ts", "device", "co", "humidity", "light", "lpg", "motion", "smoke", "temp"]
DEVICES = ["00:0f:00:70:91:0a", "1c:bf:ce:15:ec:4d", "b8:27:eb:bf:9d:51"]
START = 1_700_000_000  # 2023-11-14, an epoch second inside the contract's range
PARAMETERS = 20
PLANTED = {0: (7, 1.0), 1: (3, -1.0)}  # product -> (parameter, sign of its effect)


def _sensor_row(rng: random.Random, ts: float, device: str) -> list[str]:
    return [
        repr(ts), device, f"{rng.uniform(0.001, 0.01):.6f}", f"{rng.uniform(40, 80):.1f}",
        rng.choice(["True", "False"]), f"{rng.uniform(0.002, 0.01):.6f}", rng.choice(["True", "False"]),
        f"{rng.uniform(0.005, 0.03):.6f}", f"{rng.uniform(18, 30):.1f}",
    ]


def _write_sensors(path: Path, rng: random.Random, *, rows: int, start: float,
                   broken: dict[int, list[str]] | None = None) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh, quoting=csv.QUOTE_ALL)
        writer.writerow(SENSOR_COLUMNS)
        for i in range(rows):
            row = _sensor_row(rng, start + i * 1.5, DEVICES[i % len(DEVICES)])
            if broken and i in broken:
                row = broken[i]
            writer.writerow(row)


def sensor_samples(directory: Path, rng: random.Random) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    day1, day2, bad = (directory / n for n in ("sensors-day-1.csv", "sensors-day-2.csv", "sensors-broken.csv"))
    _write_sensors(day1, rng, rows=10_000, start=START)
    _write_sensors(day2, rng, rows=5_000, start=START + 86_400)
    good = _sensor_row(rng, START + 2 * 86_400, DEVICES[0])
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
