"""Every model of the streams app, for Django's discovery.

Each pipeline keeps its rows in its own package (`streams/<pipeline>/models.py`);
the platform keeps the consumers' heartbeats (`streams/kafka/models.py`). This
module only imports them: the app label stays `streams` and the tables keep
their names, so moving a model between these modules needs no migration.
Code should import a model from its pipeline, not from here.
"""

from .activity.models import ActivityEvent, SensorReading
from .kafka.models import ConsumerHeartbeat
from .orders.models import OrderWatermark, ProcessedOrder, ProductWindow
from .products.models import Product
from .report.models import CorrelationReport, CorrelationRow
from .telemetry.models import MachineMetric, TelemetryOverwrite, WorkOrderReading

__all__ = [
    "ActivityEvent", "ConsumerHeartbeat", "CorrelationReport", "CorrelationRow", "MachineMetric", "OrderWatermark", "ProcessedOrder",
    "Product", "ProductWindow", "SensorReading", "TelemetryOverwrite", "WorkOrderReading",
]
