"""Rows the stream pipelines persist, one module per pipeline."""

from .catalog import Product
from .report import CorrelationReport, CorrelationRow
from .telemetry import MachineMetric, WorkOrderReading

__all__ = ["CorrelationReport", "CorrelationRow", "MachineMetric", "Product", "WorkOrderReading"]
