"""Per-file statistics computed in the loading pass itself.

The validator hands over the metric columns of every block it loads (the
numbers it has already parsed to check their ranges), grouped here by device
into float64 arrays; when the file is done, min / max / mean / sample std /
exact median / count per (device, metric) come from numpy. This replaces a
`percentile_cont` scan over the rows just copied, which cost as much as a
third of the load. Memory: 8 bytes per loaded value (40 MB for a million rows
of five metrics), freed when the file is done.
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
    """Collects the loaded values of `metrics` per device, block by block."""

    def __init__(self, metrics: Sequence[str], group_by: str = "device") -> None:
        self.metrics = list(metrics)
        self.group_by = group_by
        # device -> metric -> list of float64 arrays (one per block)
        self._parts: dict[str, dict[str, list[np.ndarray]]] = defaultdict(lambda: defaultdict(list))
        # rows that went through the row-by-row rules: device -> metric -> floats
        self._rows: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))

    def add_block(self, devices: Sequence[str], values: dict[str, Sequence[float]], skip: set[int]) -> None:
        """A block's columns (same length); positions in `skip` are not loaded by this path."""
        n = len(devices)
        if not n:
            return
        keep = None
        if skip:
            keep = np.ones(n, dtype=bool)
            keep[np.fromiter(skip, dtype=np.intp, count=len(skip))] = False
        names = np.asarray(devices, dtype=object)
        if keep is not None:
            names = names[keep]
        if not len(names):
            return
        keys, inverse = np.unique(names.astype(str), return_inverse=True)
        if len(keys) == 1:
            order, bounds = None, [0, len(names)]
        else:
            order = np.argsort(inverse, kind="stable")
            bounds = [0, *np.flatnonzero(np.diff(inverse[order])) + 1, len(names)]
        for metric in self.metrics:
            column = np.asarray(values[metric], dtype=np.float64)
            if keep is not None:
                column = column[keep]
            if order is not None:
                column = column[order]
            for k, key in enumerate(keys):
                self._parts[str(key)][metric].append(column[bounds[k]:bounds[k + 1]])

    def add_row(self, device: str, values: dict[str, float]) -> None:
        per_metric = self._rows[device]
        for metric in self.metrics:
            per_metric[metric].append(values[metric])

    def results(self) -> list[MetricStats]:
        out: list[MetricStats] = []
        for device in sorted(set(self._parts) | set(self._rows)):
            for metric in self.metrics:
                pieces = list(self._parts.get(device, {}).get(metric, []))
                extra = self._rows.get(device, {}).get(metric)
                if extra:
                    pieces.append(np.asarray(extra, dtype=np.float64))
                if not pieces:
                    continue
                data = np.concatenate(pieces) if len(pieces) > 1 else pieces[0]
                n = int(data.size)
                if not n:
                    continue
                out.append(MetricStats(
                    device=device, metric=metric, count=n, min=float(data.min()), max=float(data.max()),
                    mean=float(data.mean()), std=float(data.std(ddof=1)) if n > 1 else None,
                    median=float(np.median(data)),
                ))
                del data, pieces
            self._parts.pop(device, None)
            self._rows.pop(device, None)
        return out
