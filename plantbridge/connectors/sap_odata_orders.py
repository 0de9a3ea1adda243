"""The production order in S/4HANA (API_PRODUCTION_ORDER_2_SRV): reading it, and its function imports.

`read_production_order` reads A_ProductionOrder_2 with its operations, components and items and
`map_production_order` turns SAP's entities into the canonical `ProductionOrder` (deleted
operations, sub-operations and components marked for deletion are not part of it; the header's
`LastChangeDateTime` is the order's version). `call_order_function` runs ReleaseOrder or
TechlyCmpltOrder with the header's current ETag, re-reading it when SAP answers 412.

Apart from the connector (`sap_odata`) because this is the one place that knows the shape of SAP's
order entity; the connector's postings never read it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from plantbridge.canonical.commands import StepResult
from plantbridge.canonical.fields import Quantity, normalize_order_number, sap_order_number
from plantbridge.canonical.order import Component, ErpStatus, Operation, ProductionOrder
from plantbridge.canonical.units import from_sap
from plantbridge.connectors.errors import BusinessRejection, OrderNotFound, TransientError
from plantbridge.connectors.sap_odata_http import (
    SYSTEM,
    SapHttp,
    flag,
    parse_date,
    quote_literal,
    results,
    to_decimal,
)
from plantbridge.connectors.sap_odata_payloads import PROD

NOT_FOUND = "/IWBEP/CM_MGW_RT/020"  # SAP Gateway: resource not found for segment
_MAX_ETAG_ATTEMPTS = 3


def _blank(value: Any) -> str | None:
    text = str(value or "").strip()
    return text or None


def order_path(number: str) -> str:
    return f"A_ProductionOrder_2({quote_literal(sap_order_number(normalize_order_number(number)))})"


async def order_header(http: SapHttp, number: str) -> tuple[dict[str, Any], str | None]:
    """The order's header entity and its ETag."""
    response = await http.get(PROD, order_path(number), entity="A_ProductionOrder_2")
    return response.d or {}, response.etag


async def read_production_order(
    http: SapHttp, number: str, *, plant: str | None, overdelivery_tolerance_pct: Decimal
) -> ProductionOrder:
    try:
        response = await http.get(
            PROD,
            order_path(number),
            entity="A_ProductionOrder_2",
            params={"$expand": "to_ProductionOrderOperation,to_ProductionOrderComponent,to_ProductionOrderItem"},
        )
    except BusinessRejection as err:
        if err.code == NOT_FOUND:
            raise OrderNotFound(normalize_order_number(number), system="SAP", detail=err.message) from err
        raise
    return map_production_order(response.d or {}, plant=plant, overdelivery_tolerance_pct=overdelivery_tolerance_pct)


def _operations(d: dict[str, Any]) -> list[Operation]:
    operations: list[Operation] = []
    rows = results(d.get("to_ProductionOrderOperation"))
    for op in sorted(rows, key=lambda o: str(o.get("ManufacturingOrderOperation"))):
        number = str(op.get("ManufacturingOrderOperation") or "")
        if flag(op.get("OperationIsDeleted")) or _blank(op.get("ManufacturingOrderSubOperation")) or not number:
            continue
        if any(o.number == number.zfill(4) for o in operations):
            continue  # parallel sequences reuse no numbers in practice; keep the first
        operations.append(
            Operation(
                number=number,
                work_center=str(op.get("WorkCenter") or ""),
                control_key=str(op.get("OperationControlProfile") or "PP01"),
                description=str(op.get("MfgOrderOperationText") or ""),
                planned_qty=Quantity(
                    quantity=to_decimal(op.get("OpPlannedTotalQuantity")),
                    uom=from_sap(str(op.get("OperationUnit") or d.get("ProductionUnit"))),
                ),
            )
        )
    return operations


def _components(d: dict[str, Any], numbers: set[str]) -> list[Component]:
    components: list[Component] = []
    for comp in results(d.get("to_ProductionOrderComponent")):
        if flag(comp.get("MatlCompIsMarkedForDeletion")):
            continue
        operation = _blank(comp.get("ManufacturingOrderOperation"))
        item = _blank(comp.get("BillOfMaterialItemNumber")) or str(comp.get("ReservationItem") or "1").zfill(4)
        components.append(
            Component(
                item=item[-4:],
                material=str(comp.get("Material") or ""),
                quantity=Quantity(
                    quantity=to_decimal(comp.get("RequiredQuantity")),
                    uom=from_sap(str(comp.get("BaseUnit") or comp.get("EntryUnit"))),
                ),
                operation=operation.zfill(4) if operation and operation.zfill(4) in numbers else None,
                backflush=bool(comp.get("MatlCompIsMarkedForBackflush")),
                storage_location=_blank(comp.get("StorageLocation")),
                batch=_blank(comp.get("Batch")),
                reservation=_blank(comp.get("Reservation")),
                reservation_item=_blank(comp.get("ReservationItem")),
            )
        )
    return components


def map_production_order(
    d: dict[str, Any], *, plant: str | None, overdelivery_tolerance_pct: Decimal
) -> ProductionOrder:
    """The canonical order of an A_ProductionOrder_2 read with its operations, components and items.

    A_ProductionOrder_2 does not expose the over-delivery tolerance (UEBTO): the plant's
    configuration supplies it; `plant` is the fallback when SAP names none.
    """
    operations = _operations(d)
    components = _components(d, {o.number for o in operations})
    order_items = results(d.get("to_ProductionOrderItem"))
    header_item: dict[str, Any] = order_items[0] if order_items else {}
    return ProductionOrder(
        number=normalize_order_number(str(d.get("ManufacturingOrder"))),
        plant=str(d.get("ProductionPlant") or d.get("Plant") or plant or ""),
        material=str(d.get("Material") or ""),
        description=str(d.get("OrderLongText") or "").split("\n", 1)[0][:200],
        quantity=Quantity(quantity=to_decimal(d.get("TotalQuantity")), uom=from_sap(str(d.get("ProductionUnit")))),
        order_type=str(d.get("ManufacturingOrderType") or "PP01"),
        start_date=parse_date(d.get("MfgOrderScheduledStartDate")) or parse_date(d.get("MfgOrderPlannedStartDate")),
        end_date=parse_date(d.get("MfgOrderScheduledEndDate")) or parse_date(d.get("MfgOrderPlannedEndDate")),
        storage_location=_blank(header_item.get("StorageLocation")) or _blank(d.get("StorageLocation")),
        batch=_blank(header_item.get("Batch")),
        released=flag(d.get("OrderIsReleased")) or flag(d.get("OrderIsPartiallyReleased")),
        erp_system="sap_s4",
        overdelivery_tolerance_pct=overdelivery_tolerance_pct,
        operations=operations,
        components=components,
        version=_blank(d.get("LastChangeDateTime")),  # the header's ETag (ORDER-FACTS 1.4)
        erp_status=ErpStatus(
            technically_completed=flag(d.get("OrderIsTechnicallyCompleted")),
            locked=flag(d.get("OrderIsLocked")),
            marked_for_deletion=flag(d.get("OrderIsMarkedForDeletion")) or flag(d.get("OrderIsDeleted")),
            closed=flag(d.get("OrderIsClosed")),
        ),
    )


async def call_order_function(
    http: SapHttp, number: str, function: Literal["ReleaseOrder", "TechlyCmpltOrder"], done_flag: str
) -> StepResult:
    """Call an order function import with the current ETag; re-read it on 412 (max 3 times).

    Idempotent in effect: an order whose `done_flag` is already set is answered as replayed.
    """
    sap_number = sap_order_number(normalize_order_number(number))
    document = f"ProductionOrder {normalize_order_number(number)}"
    for attempt in range(_MAX_ETAG_ATTEMPTS):
        header, etag = await order_header(http, number)
        if flag(header.get(done_flag)):
            return StepResult(documents=[document], message=f"{function}: already done", replayed=True)
        try:
            response = await http.post(
                PROD,
                function,
                entity=function,
                params={"ManufacturingOrder": quote_literal(sap_number)},
                if_match=etag or "*",
            )
        except TransientError as err:
            if "ETag outdated" in err.message and attempt + 1 < _MAX_ETAG_ATTEMPTS:
                continue  # 412: someone changed the order in between; read the new ETag
            raise
        message = (response.d or {}).get(function) or {}
        kind = str(message.get("SystemMessageType") or "S")
        code = f"{message.get('SystemMessageIdentification', '')}/{message.get('SystemMessageNumber', '')}"
        text = str(message.get("SystemMessageLongText") or response.message or "")
        if kind in ("E", "A"):
            raise BusinessRejection(text or f"{function} failed", system=SYSTEM, code=code)
        return StepResult(documents=[document], message=text or None, replayed=kind == "I")
    raise TransientError(f"SAP {function}: order {number} kept changing", system=SYSTEM, code="ETAG")
