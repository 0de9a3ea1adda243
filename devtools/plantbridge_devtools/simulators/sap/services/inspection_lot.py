"""API_INSPECTIONLOT_SRV: inspection lots (e.g. ``$filter=ManufacturingOrder eq '...'``) and the
usage decision, recorded by ``POST A_InspLotUsageDecision`` (see ``inspection.py``)."""

from __future__ import annotations

from typing import Any

from plantbridge_devtools.simulators.sap import inspection
from plantbridge_devtools.simulators.sap.odata import parse_payload
from plantbridge_devtools.simulators.sap.runtime import Context
from plantbridge_devtools.simulators.sap.schemas import inspection_lot as schema
from plantbridge_devtools.simulators.sap.services.base import Created, ServiceHandler
from plantbridge_devtools.simulators.sap.state import INSPECTION_LOT, USAGE_DECISION


class InspectionLotService(ServiceHandler):
    schema = schema.SCHEMA
    kinds = {"A_InspectionLot": INSPECTION_LOT, "A_InspLotUsageDecision": USAGE_DECISION}

    def create(self, set_name: str, body: Any, ctx: Context) -> Created:
        if set_name != "A_InspLotUsageDecision":
            return super().create(set_name, body, ctx)
        values, _ = parse_payload(schema.USAGE_DECISION, body, allow_nav=False)
        decision = inspection.record_usage_decision(self.rt.store, ctx, values)
        return Created(set_name, self.complete(set_name, decision))
