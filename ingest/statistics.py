"""Per-file statistics computed in the loading pass itself.

The validator hands over the metric columns of every block it loads (the
numbers it has already parsed to check their ranges), grouped here by device
into float64 arrays; when the file is done, min / max / mean / sample std /
exact median / count per (device, metric) come from numpy. This replaces a
`percentile_cont` scan over the rows just copied, which cost as much as a
third of the load. Memory: 8 bytes per loaded value (40 MB for a million rows
of five metrics), freed when the file is done.

Called by: ingest.contract (the validator feeds it), ingest.services.processing
and ingest.loading (the results).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MetricStats:
    device: str
    metric: str
    count: int
    min: float
    max: float
    mean: float
    std: float | None  # sample standard deviation; None for a single value (as stddev_samp)
    median: float


class StatisticsCollector:
    """Collects the loaded values of `metrics` per device, block by block: each
    block keeps its float64 columns and an int32 device code per row; grouping
    by device happens once, when the file is done."""

    def __init__(self, metrics: Sequence[str]) -> None:
        self.metrics = list(metrics)
        self._codes: dict[str, int] = {}
        self._blocks: list[tuple[np.ndarray, dict[str, np.ndarray]]] = []
        # rows that went through the row-by-row rules: device -> metric -> floats
        self._rows: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))

    def add_block(self, devices: Sequence[str], values: dict[str, Sequence[float]], skip: set[int]) -> None:
        """A block's columns (same length); positions in `skip` are not loaded by this path."""
        n = len(devices)
        if not n:
            return
        for device in set(devices).difference(self._codes):
            self._codes[device] = len(self._codes)
        codes = np.fromiter(map(self._codes.__getitem__, devices), dtype=np.int32, count=n)
        columns = {metric: np.asarray(values[metric], dtype=np.float64) for metric in self.metrics}
        if skip:
            keep = np.ones(n, dtype=bool)
            keep[np.fromiter(skip, dtype=np.intp, count=len(skip))] = False
            codes = codes[keep]
            columns = {metric: column[keep] for metric, column in columns.items()}
        self._blocks.append((codes, columns))

    def add_arrow_block(self, devices, values: dict[str, np.ndarray]) -> None:
        """A block's loaded rows: devices as an Arrow string array, metrics as float64 arrays."""
        if not len(devices):
            return
        encoded = devices.dictionary_encode()
        for device in encoded.dictionary.to_pylist():
            self._codes.setdefault(device, len(self._codes))
        lookup = np.fromiter(map(self._codes.__getitem__, encoded.dictionary.to_pylist()), dtype=np.int32)
        codes = lookup[encoded.indices.to_numpy(zero_copy_only=False)]
        self._blocks.append((codes, {metric: np.asarray(values[metric], dtype=np.float64)
                                     for metric in self.metrics}))

    def add_row(self, device: str, values: dict[str, float]) -> None:
        per_metric = self._rows[device]
        for metric in self.metrics:
            per_metric[metric].append(values[metric])

    def results(self) -> list[MetricStats]:
        """The statistics per (device, metric), computed one metric at a time
        (each metric's blocks are freed as it is done, so memory stays near the
        collected values plus one metric's column)."""
        names = {code: device for device, code in self._codes.items()}
        for device in self._rows:
            if device not in self._codes:
                names[len(names)] = device
                self._codes[device] = len(self._codes)
        codes = np.concatenate([c for c, _ in self._blocks]) if self._blocks else np.zeros(0, dtype=np.int32)
        present = np.unique(codes)
        many = len(present) > 64
        if many:  # many devices: sort once rather than one pass per device
            order = np.argsort(codes, kind="stable")
            sorted_codes = codes[order]
            starts = np.searchsorted(sorted_codes, present, side="left")
            ends = np.searchsorted(sorted_codes, present, side="right")
        out: list[MetricStats] = []
        for metric in self.metrics:
            column = (np.concatenate([c.pop(metric) for _, c in self._blocks]) if self._blocks
                      else np.zeros(0, dtype=np.float64))
            if many:
                column = column[order]
            done = set()
            for i, code in enumerate(present.tolist()):
                device = names[code]
                data = column[starts[i]:ends[i]] if many else column[codes == code]
                extra = self._rows.get(device, {}).get(metric)
                if extra:
                    data = np.concatenate([data, np.asarray(extra, dtype=np.float64)])
                out.append(_describe(device, metric, data))
                done.add(device)
            for device, per_metric in self._rows.items():
                if device not in done and per_metric.get(metric):
                    out.append(_describe(device, metric, np.asarray(per_metric[metric], dtype=np.float64)))
            del column
        self._blocks.clear()
        self._rows.clear()
        out.sort(key=lambda r: (r.device, self.metrics.index(r.metric)))
        return out


def _describe(device: str, metric: str, data: np.ndarray) -> MetricStats:
    n = int(data.size)
    return MetricStats(
        device=device, metric=metric, count=n, min=float(data.min()), max=float(data.max()),
        mean=float(data.mean()), std=float(data.std(ddof=1)) if n > 1 else None, median=float(np.median(data)),
    )
