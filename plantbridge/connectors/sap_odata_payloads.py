"""What the S/4HANA OData connector sends and what it reads back: service names, request bodies, results.

Pure functions, no I/O: one builder per posting body (field names as in the S/4HANA APIs) and one
reader per answer turning SAP's entity into a `StepResult`. Kept apart from the connector
(`sap_odata`) so the connector reads as the exactly-once protocol -- look up, post, answer a
duplicate with the look-up -- while the field-by-field mapping of each canonical command to SAP's
entity is here, testable without a server.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from plantbridge.canonical.commands import (
    ConfirmOperation,
    GoodsMovement,
    GoodsMovementItem,
    GoodsReceipt,
    MaintenanceNotification,
    StepResult,
)
from plantbridge.canonical.order import ProductionOrder
from plantbridge.canonical.units import to_sap
from plantbridge.connectors.errors import BusinessRejection
from plantbridge.connectors.sap_odata_http import SYSTEM, SapResponse, decimal_text, format_date, results

PROD = "API_PRODUCTION_ORDER_2_SRV"
CONF = "API_PROD_ORDER_CONFIRMATION_2_SRV"
MATDOC = "API_MATERIAL_DOCUMENT_SRV"
QM = "API_INSPECTIONLOT_SRV"
PM = "API_MAINTNOTIFICATION"

# GoodsMovementCode of A_MaterialDocumentHeader (transaction/event of MIGO): 02 goods receipt for
# a production order, 03 goods issue (to an order, for scrapping).
GM_CODE = {"101": "02", "102": "02", "531": "02", "532": "02", "261": "03", "262": "03", "551": "03", "552": "03"}

# Usage decision per disposition: (code group, code, valuation A accepted / R rejected).
DEFAULT_UD_CODES: Mapping[str, tuple[str, str, str]] = {
    "release": ("01", "A", "A"),
    "rework": ("01", "R1", "R"),
    "scrap": ("01", "R", "R"),
}

# Activity types of a standard routing: 1 setup, 2 machine, 3 labor (OpConfirmedWorkQuantity1..3).
_ACTIVITY_SLOTS = (("setup_min", 1), ("machine_min", 2), ("labor_min", 3))


def _today() -> str:
    return format_date(datetime.now(UTC).date())


def posting_date(day: date | None) -> str:
    """The command's posting date (the plant-local date of the event), else today (UTC)."""
    return format_date(day) if day is not None else _today()


def movement_item(order: ProductionOrder, item: GoodsMovementItem) -> dict[str, Any]:
    """The fields a goods movement item shares in a confirmation and in a material document."""
    body: dict[str, Any] = {
        "Material": item.material,
        "Plant": order.plant,
        "GoodsMovementType": item.movement_type,
        "EntryUnit": to_sap(item.quantity.uom),
        "QuantityInEntryUnit": decimal_text(item.quantity.quantity),
    }
    for field, value in (
        ("StorageLocation", item.storage_location),
        ("Batch", item.batch),
        ("Reservation", item.reservation),
        ("ReservationItem", item.reservation_item),
    ):
        if value:
            body[field] = value
    return body


# --- confirmations -----------------------------------------------------------------------------


def confirmation_body(order: ProductionOrder, cmd: ConfirmOperation, key: str) -> dict[str, Any]:
    """ProdnOrdConf2 with its deep-inserted goods movements; `ExternalSystemConfirmation` = the key."""
    unit = to_sap(cmd.yield_qty.uom)
    body: dict[str, Any] = {
        "OrderID": order.number,
        "OrderOperation": cmd.operation,
        "ConfirmationUnit": unit,
        "ConfirmationYieldQuantity": decimal_text(cmd.yield_qty.quantity),
        "ConfirmationScrapQuantity": decimal_text(cmd.scrap_qty.quantity if cmd.scrap_qty else Decimal(0)),
        "ConfirmationReworkQuantity": decimal_text(cmd.rework_qty.quantity if cmd.rework_qty else Decimal(0)),
        # AUERU: "X" final, " " partial ("1" = automatic final by quantity is not used: the plant decides).
        "FinalConfirmationType": "X" if cmd.final else "",
        "IsFinalConfirmation": cmd.final,
        "ExternalSystemConfirmation": str(uuid.UUID(key)),
        "PostingDate": posting_date(cmd.posting_date),
    }
    for other in (cmd.scrap_qty, cmd.rework_qty):
        if other is not None and other.quantity and other.uom != cmd.yield_qty.uom:
            raise BusinessRejection(
                f"scrap/rework unit {other.uom} differs from the yield unit {cmd.yield_qty.uom}",
                system=SYSTEM,
                code="PB/UNIT",
            )
    if cmd.reason:
        if len(cmd.reason) <= 4:
            body["VarianceReasonCode"] = cmd.reason
        body["ConfirmationText"] = cmd.reason[:40]
    if cmd.personnel:
        body["Personnel"] = cmd.personnel
    if cmd.activities is not None:
        for name, slot in _ACTIVITY_SLOTS:
            minutes: Decimal = getattr(cmd.activities, name)
            body[f"OpWorkQuantityUnit{slot}"] = "MIN"
            body[f"OpConfirmedWorkQuantity{slot}"] = decimal_text(minutes)
    if cmd.goods_movements:
        body["to_ProdnOrdConfMatlDocItm"] = [
            {**movement_item(order, gm), "OrderID": order.number} for gm in cmd.goods_movements
        ]
    else:
        # The saga sends every backflush it wants; SAP must not backflush again on its own.
        body["APIConfHasNoGoodsMovements"] = True
    return body


def confirmation_result(conf: dict[str, Any], response: SapResponse | None, *, replayed: bool) -> StepResult:
    documents = [f"ProdnOrdConf2 {conf.get('ConfirmationGroup')}/{conf.get('ConfirmationCount')}"]
    for movement in results(conf.get("to_ProdnOrdConfMatlDocItm")):
        doc = f"MaterialDocument {movement.get('MaterialDocument')}/{movement.get('MaterialDocumentYear')}"
        if movement.get("MaterialDocument") and doc not in documents:
            documents.append(doc)
    message = response.message if response else "found by ExternalSystemConfirmation"
    return StepResult(documents=documents, message=message, replayed=replayed)


# --- material documents ------------------------------------------------------------------------


def matdoc_keys(key: str) -> tuple[str, str]:
    """(ReferenceDocument, MaterialDocumentHeaderText): the 32-hex key split in two halves."""
    return key[:16], key[16:]


def material_document_body(
    items: list[dict[str, Any]], movement_type: str, key: str, day: date | None
) -> dict[str, Any]:
    """A_MaterialDocumentHeader with its items, the key in ReferenceDocument + MaterialDocumentHeaderText."""
    reference, text = matdoc_keys(key)
    return {
        "GoodsMovementCode": GM_CODE.get(movement_type, "03"),
        "PostingDate": posting_date(day),
        "DocumentDate": posting_date(day),
        "ReferenceDocument": reference,
        "MaterialDocumentHeaderText": text,
        "to_MaterialDocumentItem": items,
    }


def goods_movement_items(order: ProductionOrder, cmd: GoodsMovement) -> list[dict[str, Any]]:
    items = []
    for item in cmd.items:
        body = movement_item(order, item)
        body["ManufacturingOrder"] = order.number
        if item.movement_type in ("101", "102"):
            body["ManufacturingOrderItem"] = "1"
            body["GoodsMovementRefDocType"] = "F"
        items.append(body)
    return items


def goods_receipt_item(order: ProductionOrder, cmd: GoodsReceipt) -> dict[str, Any]:
    item: dict[str, Any] = {
        "Material": order.material,
        "Plant": order.plant,
        "GoodsMovementType": "101",
        "ManufacturingOrder": order.number,
        "ManufacturingOrderItem": "1",
        "GoodsMovementRefDocType": "F",
        "EntryUnit": to_sap(cmd.quantity.uom),
        "QuantityInEntryUnit": decimal_text(cmd.quantity.quantity),
    }
    storage_location = cmd.storage_location or order.storage_location
    batch = cmd.batch or order.batch
    if storage_location:
        item["StorageLocation"] = storage_location
    if batch:
        item["Batch"] = batch
    return item


def matdoc_result(doc: dict[str, Any], response: SapResponse | None, *, replayed: bool) -> StepResult:
    return StepResult(
        documents=[f"MaterialDocument {doc.get('MaterialDocument')}/{doc.get('MaterialDocumentYear')}"],
        message=response.message if response else "found by ReferenceDocument/MaterialDocumentHeaderText",
        replayed=replayed,
    )


# --- usage decision and maintenance notification -----------------------------------------------


def usage_decision_body(lot: str, plant: str, ud_code: tuple[str, str, str]) -> dict[str, Any]:
    """A_InspLotUsageDecision for `lot` with (code group, code, valuation)."""
    group, code, valuation = ud_code
    return {
        "InspectionLot": lot,
        "InspLotUsageDecisionLevel": "L",
        "InspLotUsageDecisionCatalog": "3",
        "SelectedCodeSetPlant": plant,
        "InspLotUsageDecisionCodeGroup": group,
        "InspectionLotUsageDecisionCode": code,
        "InspLotUsageDecisionValuation": valuation,
    }


def notification_reference(key: str) -> str:
    """MaintNotifExtReferenceNumber (20 chars): the first 20 hex digits (80 bits) of the key."""
    return key[:20]


def notification_body(
    order: ProductionOrder, cmd: MaintenanceNotification, key: str, notification_type: str
) -> dict[str, Any]:
    """MaintenanceNotification with the key's reference, the full key repeated in the long text."""
    long_text = f"{cmd.description}\n\nOrder {order.number}, plant {order.plant}. plantbridge key {key}"
    body: dict[str, Any] = {
        "NotificationType": notification_type,
        "NotificationText": cmd.description[:40],
        "MaintNotificationLongText": long_text,
        "MaintPriority": str(cmd.priority),
        "TechnicalObject": cmd.equipment,
        "TechObjIsEquipOrFuncnlLoc": "EAMS_EQUI",
        "MaintenancePlanningPlant": order.plant,
        "MaintNotifExtReferenceNumber": notification_reference(key),
    }
    if cmd.work_center:
        body["MainWorkCenter"] = cmd.work_center
        body["MainWorkCenterPlant"] = order.plant
    return body
