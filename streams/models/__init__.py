"""Rows the stream pipelines persist, one module per pipeline."""

from .catalog import Product
from .orders import ProcessedOrder, ProductWindow
from .readings import ActivityEvent, SensorReading
from .report import CorrelationReport, CorrelationRow
from .telemetry import MachineMetric, WorkOrderReading

__all__ = [
    "ActivityEvent", "CorrelationReport", "CorrelationRow", "MachineMetric", "ProcessedOrder", "Product",
    "ProductWindow", "SensorReading", "WorkOrderReading",
]
