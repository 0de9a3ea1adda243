"""SAP S/4HANA over its OData v2 APIs: the plant's `ErpConnector` and `OrderSource`.

Services (names as in S/4HANA): API_PRODUCTION_ORDER_2_SRV (read, ReleaseOrder, TechlyCmpltOrder),
API_PROD_ORDER_CONFIRMATION_2_SRV (ProdnOrdConf2 with deep-inserted goods movements),
API_MATERIAL_DOCUMENT_SRV (A_MaterialDocumentHeader + to_MaterialDocumentItem),
API_INSPECTIONLOT_SRV (A_InspLotUsageDecision) and API_MAINTNOTIFICATION (MaintenanceNotification).

Exactly-once in effect: every posting stores the 32-hex external key where SAP has a field for it
and, on `retry=True`, is looked up by it before posting again:

- confirmation: `ExternalSystemConfirmation` (Edm.Guid) = the key as a UUID; a duplicate-key
  rejection is also answered by the look-up (never a second posting, never an exception);
- material document: `ReferenceDocument` (16 chars) = first half of the key,
  `MaterialDocumentHeaderText` (25 chars) = second half — both are searched together;
- maintenance notification: `MaintNotifExtReferenceNumber` (20 chars) = first 20 hex digits
  (80 bits), the full key is repeated in the long text;
- TECO and usage decision are idempotent in effect: an order already TECO, or a lot already
  decided with the same code, is answered as replayed.

Transport, CSRF, ETags, codec and error classification live in `sap_odata_http`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from types import TracebackType
from typing import Any, Literal

import httpx

from plantbridge.canonical.commands import (
    CompleteOrder,
    ConfirmOperation,
    GoodsMovement,
    GoodsMovementItem,
    GoodsReceipt,
    MaintenanceNotification,
    StepResult,
    UsageDecision,
)
from plantbridge.canonical.fields import Quantity, normalize_order_number, sap_order_number
from plantbridge.canonical.order import Component, ErpStatus, Operation, ProductionOrder
from plantbridge.canonical.plant_config import TlsSettings
from plantbridge.canonical.units import from_sap, to_sap
from plantbridge.connectors.errors import BusinessRejection, OrderNotFound, TransientError
from plantbridge.connectors.ports import CommandDispatch
from plantbridge.connectors.sap_odata_http import (
    SYSTEM,
    SapHttp,
    SapResponse,
    decimal_text,
    flag,
    format_date,
    parse_date,
    quote_literal,
    results,
    to_decimal,
)

PROD = "API_PRODUCTION_ORDER_2_SRV"
CONF = "API_PROD_ORDER_CONFIRMATION_2_SRV"
MATDOC = "API_MATERIAL_DOCUMENT_SRV"
QM = "API_INSPECTIONLOT_SRV"
PM = "API_MAINTNOTIFICATION"
NOT_FOUND = "/IWBEP/CM_MGW_RT/020"  # SAP Gateway: resource not found for segment

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
_MAX_ETAG_ATTEMPTS = 3


def _blank(value: Any) -> str | None:
    text = str(value or "").strip()
    return text or None


def _today() -> str:
    return format_date(datetime.now(UTC).date())


def _posting_date(day: date | None) -> str:
    """The command's posting date (the plant-local date of the event), else today (UTC)."""
    return format_date(day) if day is not None else _today()


class SapODataConnector(CommandDispatch):
    """`ErpConnector` and `OrderSource` for S/4HANA (OData v2). Use as an async context manager."""

    def __init__(
        self,
        base_url: str,
        *,
        user: str,
        password: str | None,
        client: str = "100",
        timeout: float = 30.0,
        plant: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        ud_codes: Mapping[str, tuple[str, str, str]] | None = None,
        notification_type: str = "M2",
        overdelivery_tolerance_pct: Decimal = Decimal(0),
        tls: TlsSettings | None = None,
        auth: httpx.Auth | None = None,
    ) -> None:
        self.http = SapHttp(base_url, user=user, password=password, client=client, timeout=timeout, transport=transport,
                            tls=tls, auth=auth)
        self.plant = plant
        self.ud_codes = dict(ud_codes or DEFAULT_UD_CODES)
        self.notification_type = notification_type
        # A_ProductionOrder_2 does not expose the over-delivery tolerance (UEBTO): the plant's
        # configuration supplies it for the canonical order.
        self.overdelivery_tolerance_pct = overdelivery_tolerance_pct

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> SapODataConnector:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # --- production order ----------------------------------------------------------------------

    @staticmethod
    def _order_path(number: str) -> str:
        return f"A_ProductionOrder_2({quote_literal(sap_order_number(normalize_order_number(number)))})"

    async def _order_header(self, number: str) -> tuple[dict[str, Any], str | None]:
        response = await self.http.get(PROD, self._order_path(number), entity="A_ProductionOrder_2")
        return response.d or {}, response.etag

    async def read_order(self, number: str) -> ProductionOrder:
        try:
            response = await self.http.get(
                PROD,
                self._order_path(number),
                entity="A_ProductionOrder_2",
                params={"$expand": "to_ProductionOrderOperation,to_ProductionOrderComponent,to_ProductionOrderItem"},
            )
        except BusinessRejection as err:
            if err.code == NOT_FOUND:
                raise OrderNotFound(normalize_order_number(number), system="SAP", detail=err.message) from err
            raise
        return self._map_order(response.d or {})

    def _map_order(self, d: dict[str, Any]) -> ProductionOrder:
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
        numbers = {o.number for o in operations}
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
        order_items = results(d.get("to_ProductionOrderItem"))
        header_item: dict[str, Any] = order_items[0] if order_items else {}
        return ProductionOrder(
            number=normalize_order_number(str(d.get("ManufacturingOrder"))),
            plant=str(d.get("ProductionPlant") or d.get("Plant") or self.plant or ""),
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
            overdelivery_tolerance_pct=self.overdelivery_tolerance_pct,
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

    async def _order_function(
        self, number: str, function: Literal["ReleaseOrder", "TechlyCmpltOrder"], done_flag: str
    ) -> StepResult:
        """Call an order function import with the current ETag; re-read it on 412 (max 3 times)."""
        sap_number = sap_order_number(normalize_order_number(number))
        document = f"ProductionOrder {normalize_order_number(number)}"
        for attempt in range(_MAX_ETAG_ATTEMPTS):
            header, etag = await self._order_header(number)
            if flag(header.get(done_flag)):
                return StepResult(documents=[document], message=f"{function}: already done", replayed=True)
            try:
                response = await self.http.post(
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

    async def release_order(self, number: str) -> StepResult:
        return await self._order_function(number, "ReleaseOrder", "OrderIsReleased")

    async def complete_order(
        self, order: ProductionOrder, cmd: CompleteOrder, *, key: str, retry: bool
    ) -> StepResult:
        return await self._order_function(order.number, "TechlyCmpltOrder", "OrderIsTechnicallyCompleted")

    # --- confirmations -------------------------------------------------------------------------

    @staticmethod
    def _confirmation_result(conf: dict[str, Any], response: SapResponse | None, *, replayed: bool) -> StepResult:
        documents = [f"ProdnOrdConf2 {conf.get('ConfirmationGroup')}/{conf.get('ConfirmationCount')}"]
        for movement in results(conf.get("to_ProdnOrdConfMatlDocItm")):
            doc = f"MaterialDocument {movement.get('MaterialDocument')}/{movement.get('MaterialDocumentYear')}"
            if movement.get("MaterialDocument") and doc not in documents:
                documents.append(doc)
        message = response.message if response else "found by ExternalSystemConfirmation"
        return StepResult(documents=documents, message=message, replayed=replayed)

    async def _find_confirmation(self, key: str) -> dict[str, Any] | None:
        response = await self.http.get(
            CONF,
            "ProdnOrdConf2",
            entity="ProdnOrdConf2",
            params={
                "$filter": f"ExternalSystemConfirmation eq guid'{uuid.UUID(key)}'",
                "$expand": "to_ProdnOrdConfMatlDocItm",
            },
        )
        rows = [r for r in results(response.d) if not r.get("IsReversal")]
        return rows[0] if rows else None

    def _movement_item(self, order: ProductionOrder, item: GoodsMovementItem) -> dict[str, Any]:
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

    async def confirm_operation(
        self, order: ProductionOrder, cmd: ConfirmOperation, *, key: str, retry: bool
    ) -> StepResult:
        if retry:
            existing = await self._find_confirmation(key)
            if existing is not None:
                return self._confirmation_result(existing, None, replayed=True)
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
            "PostingDate": _posting_date(cmd.posting_date),
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
                {**self._movement_item(order, gm), "OrderID": order.number} for gm in cmd.goods_movements
            ]
        else:
            # The saga sends every backflush it wants; SAP must not backflush again on its own.
            body["APIConfHasNoGoodsMovements"] = True
        try:
            response = await self.http.post(CONF, "ProdnOrdConf2", entity="ProdnOrdConf2", body=body)
        except BusinessRejection:
            # E.g. SAP refuses a duplicate ExternalSystemConfirmation: the posting already exists.
            existing = await self._find_confirmation(key)
            if existing is not None:
                return self._confirmation_result(existing, None, replayed=True)
            raise
        return self._confirmation_result(response.d or {}, response, replayed=False)

    # --- material documents --------------------------------------------------------------------

    @staticmethod
    def _matdoc_keys(key: str) -> tuple[str, str]:
        """(ReferenceDocument, MaterialDocumentHeaderText): the 32-hex key split in two halves."""
        return key[:16], key[16:]

    async def _find_material_document(self, key: str) -> dict[str, Any] | None:
        reference, text = self._matdoc_keys(key)
        response = await self.http.get(
            MATDOC,
            "A_MaterialDocumentHeader",
            entity="A_MaterialDocumentHeader",
            params={
                "$filter": f"ReferenceDocument eq {quote_literal(reference)} and "
                f"MaterialDocumentHeaderText eq {quote_literal(text)}"
            },
        )
        rows = results(response.d)
        return rows[0] if rows else None

    @staticmethod
    def _matdoc_result(doc: dict[str, Any], response: SapResponse | None, *, replayed: bool) -> StepResult:
        return StepResult(
            documents=[f"MaterialDocument {doc.get('MaterialDocument')}/{doc.get('MaterialDocumentYear')}"],
            message=response.message if response else "found by ReferenceDocument/MaterialDocumentHeaderText",
            replayed=replayed,
        )

    async def _post_material_document(
        self, order: ProductionOrder, items: list[dict[str, Any]], movement_type: str, *, key: str, retry: bool,
        posting_date: date | None = None,
    ) -> StepResult:
        if retry:
            existing = await self._find_material_document(key)
            if existing is not None:
                return self._matdoc_result(existing, None, replayed=True)
        reference, text = self._matdoc_keys(key)
        body = {
            "GoodsMovementCode": GM_CODE.get(movement_type, "03"),
            "PostingDate": _posting_date(posting_date),
            "DocumentDate": _posting_date(posting_date),
            "ReferenceDocument": reference,
            "MaterialDocumentHeaderText": text,
            "to_MaterialDocumentItem": items,
        }
        response = await self.http.post(
            MATDOC, "A_MaterialDocumentHeader", entity="A_MaterialDocumentHeader", body=body
        )
        return self._matdoc_result(response.d or {}, response, replayed=False)

    async def goods_movement(
        self, order: ProductionOrder, cmd: GoodsMovement, *, key: str, retry: bool
    ) -> StepResult:
        items = []
        for item in cmd.items:
            body = self._movement_item(order, item)
            body["ManufacturingOrder"] = order.number
            if item.movement_type in ("101", "102"):
                body["ManufacturingOrderItem"] = "1"
                body["GoodsMovementRefDocType"] = "F"
            items.append(body)
        return await self._post_material_document(order, items, cmd.items[0].movement_type, key=key, retry=retry,
                                                  posting_date=cmd.posting_date)

    async def goods_receipt(
        self, order: ProductionOrder, cmd: GoodsReceipt, *, key: str, retry: bool
    ) -> StepResult:
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
        return await self._post_material_document(order, [item], "101", key=key, retry=retry,
                                                  posting_date=cmd.posting_date)

    # --- usage decision ------------------------------------------------------------------------

    async def usage_decision(
        self, order: ProductionOrder, cmd: UsageDecision, *, key: str, retry: bool
    ) -> StepResult:
        group, code, valuation = self.ud_codes[cmd.decision]
        response = await self.http.get(
            QM,
            "A_InspectionLot",
            entity="A_InspectionLot",
            params={
                "$filter": f"ManufacturingOrder eq {quote_literal(sap_order_number(order.number))}",
                "$orderby": "InspectionLot",
            },
        )
        lots = results(response.d)
        if not lots:
            raise BusinessRejection(
                f"Order {order.number} has no inspection lot for a usage decision", system=SYSTEM, code="PB/NOLOT"
            )
        open_lots = [lot for lot in lots if not lot.get("InspectionLotHasUsageDecision")]
        if retry or not open_lots:
            decided = await self._decision_with_code(
                [lot for lot in lots if lot.get("InspectionLotHasUsageDecision")], code
            )
            if decided is not None:
                return StepResult(documents=[f"InspectionLot {decided} UD {code}"], replayed=True)
        if not open_lots:
            raise BusinessRejection(
                f"Every inspection lot of order {order.number} already has a usage decision "
                f"(none with code {code})",
                system=SYSTEM,
                code="QA/501",
            )
        lot = str(open_lots[0]["InspectionLot"])
        body: dict[str, Any] = {
            "InspectionLot": lot,
            "InspLotUsageDecisionLevel": "L",
            "InspLotUsageDecisionCatalog": "3",
            "SelectedCodeSetPlant": order.plant,
            "InspLotUsageDecisionCodeGroup": group,
            "InspectionLotUsageDecisionCode": code,
            "InspLotUsageDecisionValuation": valuation,
        }
        try:
            created = await self.http.post(QM, "A_InspLotUsageDecision", entity="A_InspLotUsageDecision", body=body)
        except BusinessRejection:
            if await self._decision_with_code([{"InspectionLot": lot}], code) is not None:
                return StepResult(documents=[f"InspectionLot {lot} UD {code}"], replayed=True)
            raise
        return StepResult(documents=[f"InspectionLot {lot} UD {code}"], message=created.message)

    async def _decision_with_code(self, lots: list[dict[str, Any]], code: str) -> str | None:
        """The newest of `lots` whose usage decision has `code`."""
        for lot in reversed(lots):
            number = str(lot["InspectionLot"])
            try:
                response = await self.http.get(
                    QM, f"A_InspLotUsageDecision({quote_literal(number)})", entity="A_InspLotUsageDecision"
                )
            except BusinessRejection:
                continue  # no decision stored for this lot
            if str((response.d or {}).get("InspectionLotUsageDecisionCode") or "") == code:
                return number
        return None

    # --- maintenance notification --------------------------------------------------------------

    async def _find_notification(self, reference: str) -> dict[str, Any] | None:
        response = await self.http.get(
            PM,
            "MaintenanceNotification",
            entity="MaintenanceNotification",
            params={"$filter": f"MaintNotifExtReferenceNumber eq {quote_literal(reference)}"},
        )
        rows = results(response.d)
        return rows[0] if rows else None

    async def maintenance_notification(
        self, order: ProductionOrder, cmd: MaintenanceNotification, *, key: str, retry: bool
    ) -> StepResult:
        reference = key[:20]
        if retry:
            existing = await self._find_notification(reference)
            if existing is not None:
                return StepResult(
                    documents=[f"MaintenanceNotification {existing.get('MaintenanceNotification')}"], replayed=True
                )
        long_text = f"{cmd.description}\n\nOrder {order.number}, plant {order.plant}. plantbridge key {key}"
        body: dict[str, Any] = {
            "NotificationType": self.notification_type,
            "NotificationText": cmd.description[:40],
            "MaintNotificationLongText": long_text,
            "MaintPriority": str(cmd.priority),
            "TechnicalObject": cmd.equipment,
            "TechObjIsEquipOrFuncnlLoc": "EAMS_EQUI",
            "MaintenancePlanningPlant": order.plant,
            "MaintNotifExtReferenceNumber": reference,
        }
        if cmd.work_center:
            body["MainWorkCenter"] = cmd.work_center
            body["MainWorkCenterPlant"] = order.plant
        response = await self.http.post(PM, "MaintenanceNotification", entity="MaintenanceNotification", body=body)
        number = (response.d or {}).get("MaintenanceNotification")
        return StepResult(documents=[f"MaintenanceNotification {number}"], message=response.message)
