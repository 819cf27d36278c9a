"""Rows the stream pipelines persist, one module per pipeline."""

from .catalog import Product
from .orders import ProcessedOrder, ProductWindow
from .readings import ActivityEvent, SensorReading
from .telemetry import MachineMetric, WorkOrderReading

__all__ = [
    "ActivityEvent", "MachineMetric", "ProcessedOrder", "Product", "ProductWindow", "SensorReading",
    "WorkOrderReading",
]
