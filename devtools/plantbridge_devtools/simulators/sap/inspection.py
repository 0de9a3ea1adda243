"""Quality inspection: inspection lots for production orders and their usage decisions.

Lots are created as SAP does for inspection types bound to the order's material: origin ``03``
(in-process inspection) when the order is released, origin ``04`` (goods receipt from production)
for every goods receipt (101) posted against the order. The usage decision is recorded by
creating an ``A_InspLotUsageDecision`` entity; for origin ``04`` the lot quantity is then posted
to unrestricted (code valuation ``A``) or blocked stock (``R``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from plantbridge_devtools.simulators.sap import messages
from plantbridge_devtools.simulators.sap.odata import Entity, dec_str, timestamp_str
from plantbridge_devtools.simulators.sap.runtime import Context
from plantbridge_devtools.simulators.sap.state import INSPECTION_LOT, USAGE_DECISION, Store, make_key

LOT_TEXT = {"03": "In-process inspection for production", "04": "Goods receipt inspection from production"}


def create_lot(
    store: Store,
    ctx: Context,
    order: Entity,
    *,
    origin: str,
    quantity: Decimal,
    material_document: tuple[str, str, str] | None = None,
    batch: str = "",
) -> Entity:
    number = str(store.next_number(f"inspection_lot:{origin}", int(origin) * 10**10 + 1))
    year, document, item = material_document or ("", "", "")
    lot: Entity = {
        "InspectionLot": number,
        "Material": order["Material"],
        "Batch": batch,
        "Plant": order["ProductionPlant"],
        "InspectionLotOrigin": origin,
        "OrderInternalBillOfOperations": order["OrderInternalBillOfOperations"],
        "ManufacturingOrder": order["ManufacturingOrder"],
        "InspectionLotText": LOT_TEXT.get(origin, "")[:40],
        "InspectionLotType": origin,
        "InspectionLotQuantity": dec_str(quantity),
        "InspectionLotActualQuantity": dec_str(quantity),
        "InspectionLotDefectiveQuantity": "0",
        "InspectionLotQuantityUnit": order["ProductionUnit"],
        "InspLotCreatedOnLocalDate": ctx.today.isoformat(),
        "InspectionLotHasUsageDecision": False,
        "InspLotIsStockPostingCompleted": False,
        "InspectionLotCreatedBy": ctx.user,
        "InspectionLotCreatedOn": ctx.today.isoformat(),
        "InspectionLotCreatedOnTime": ctx.now.time().isoformat(),
        "ChangedDateTime": timestamp_str(ctx.now),
        "InspectionLotStartDate": ctx.today.isoformat(),
        "InspectionLotEndDate": order.get("MfgOrderPlannedEndDate"),
        "MaterialDocumentYear": year,
        "MaterialDocument": document,
        "MaterialDocumentItem": item,
        "GoodsMovementType": "101" if material_document else "",
    }
    store.put(INSPECTION_LOT, make_key(number), lot, parent=make_key(order["ManufacturingOrder"]))
    return lot


def record_usage_decision(store: Store, ctx: Context, values: dict[str, Any]) -> Entity:
    lot_number = str(values.get("InspectionLot") or "")
    if not lot_number:
        raise messages.invalid_value("InspectionLot", "the inspection lot is mandatory")
    code = str(values.get("InspectionLotUsageDecisionCode") or "")
    if not code:
        raise messages.invalid_value("InspectionLotUsageDecisionCode", "the usage decision code is mandatory")
    with store.transaction():
        lot = store.get(INSPECTION_LOT, make_key(lot_number))
        if lot is None:
            raise messages.inspection_lot_not_found(lot_number)
        if store.get(USAGE_DECISION, make_key(lot_number)) is not None or lot.get("InspectionLotHasUsageDecision"):
            raise messages.usage_decision_exists(lot["InspectionLot"])
        valuation = str(values.get("InspLotUsageDecisionValuation") or ("R" if code.upper().startswith("R") else "A"))
        decision: Entity = {
            **values,
            "InspectionLot": lot["InspectionLot"],
            "InspLotUsageDecisionLevel": values.get("InspLotUsageDecisionLevel") or "L",
            "InspLotUsageDecisionCatalog": values.get("InspLotUsageDecisionCatalog") or "3",
            "SelectedCodeSetPlant": values.get("SelectedCodeSetPlant") or lot["Plant"],
            "InspLotUsageDecisionValuation": valuation,
            "InspectionLotUsageDecidedBy": ctx.user,
            "InspectionLotUsageDecidedOn": ctx.today.isoformat(),
            "InspLotUsageDecisionTime": ctx.now.time().isoformat(),
            "ChangedDateTime": timestamp_str(ctx.now),
        }
        store.put(USAGE_DECISION, make_key(lot["InspectionLot"]), decision, parent=make_key(lot["ManufacturingOrder"]))
        lot["InspectionLotHasUsageDecision"] = True
        if lot["InspectionLotOrigin"] == "04":
            target = "InspLotQtyToFree" if valuation == "A" else "InspLotQtyToBlocked"
            lot[target] = lot["InspectionLotQuantity"]
            lot["InspLotIsStockPostingCompleted"] = True
        lot["ChangedDateTime"] = timestamp_str(ctx.now)
        store.put(INSPECTION_LOT, make_key(lot["InspectionLot"]), lot, parent=make_key(lot["ManufacturingOrder"]))
    ctx.info("QA/100", f"Usage decision for inspection lot {lot['InspectionLot']} saved", "success")
    return decision
