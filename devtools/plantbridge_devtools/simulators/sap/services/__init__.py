"""Handlers of the five OData services, one module per service."""

from __future__ import annotations

from plantbridge_devtools.simulators.sap.runtime import Runtime
from plantbridge_devtools.simulators.sap.services.base import ServiceHandler
from plantbridge_devtools.simulators.sap.services.confirmation import ConfirmationService
from plantbridge_devtools.simulators.sap.services.inspection_lot import InspectionLotService
from plantbridge_devtools.simulators.sap.services.maint_notification import MaintenanceNotificationService
from plantbridge_devtools.simulators.sap.services.material_document import MaterialDocumentService
from plantbridge_devtools.simulators.sap.services.production_order import ProductionOrderService

HANDLER_TYPES: tuple[type[ServiceHandler], ...] = (
    ProductionOrderService,
    ConfirmationService,
    MaterialDocumentService,
    InspectionLotService,
    MaintenanceNotificationService,
)


def build_handlers(rt: Runtime) -> dict[str, ServiceHandler]:
    return {cls.schema.service: cls(rt) for cls in HANDLER_TYPES}
