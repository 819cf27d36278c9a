"""Rows the stream pipelines persist, one module per pipeline."""

from .telemetry import MachineMetric, WorkOrderReading

__all__ = ["MachineMetric", "WorkOrderReading"]
