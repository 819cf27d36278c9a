"""Rows the stream pipelines persist, one module per pipeline."""

from .catalog import Product
from .consumers import ConsumerHeartbeat
from .orders import ProcessedOrder, ProductWindow
from .readings import ActivityEvent, SensorReading
from .report import CorrelationReport, CorrelationRow
from .telemetry import MachineMetric, TelemetryOverwrite, WorkOrderReading

__all__ = [
    "ActivityEvent", "ConsumerHeartbeat", "CorrelationReport", "CorrelationRow", "MachineMetric", "ProcessedOrder", "Product",
    "ProductWindow", "SensorReading", "TelemetryOverwrite", "WorkOrderReading",
]
