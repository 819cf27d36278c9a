"""Rows the stream pipelines persist, one module per pipeline."""

from .catalog import Product
from .telemetry import MachineMetric, WorkOrderReading

__all__ = ["MachineMetric", "Product", "WorkOrderReading"]
