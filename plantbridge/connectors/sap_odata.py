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

This module is the connector: per command, the look-up by the key and the posting. Reading the
order and its function imports (release, TECO) are in `sap_odata_orders`, the request bodies and
service names in `sap_odata_payloads`; transport, CSRF, ETags, codec and error classification live
in `sap_odata_http`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from types import TracebackType
from typing import Any

import httpx

from plantbridge.canonical.commands import (
    CompleteOrder,
    ConfirmOperation,
    GoodsMovement,
    GoodsReceipt,
    MaintenanceNotification,
    StepResult,
    UsageDecision,
)
from plantbridge.canonical.fields import sap_order_number
from plantbridge.canonical.order import ProductionOrder
from plantbridge.canonical.plant_config import TlsSettings
from plantbridge.connectors.errors import BusinessRejection
from plantbridge.connectors.ports import CommandDispatch
from plantbridge.connectors.sap_odata_http import SYSTEM, SapHttp, quote_literal, results
from plantbridge.connectors.sap_odata_orders import call_order_function, read_production_order
from plantbridge.connectors.sap_odata_payloads import (
    CONF,
    DEFAULT_UD_CODES,
    MATDOC,
    PM,
    QM,
    confirmation_body,
    confirmation_result,
    goods_movement_items,
    goods_receipt_item,
    matdoc_keys,
    matdoc_result,
    material_document_body,
    notification_body,
    notification_reference,
    usage_decision_body,
)


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

    async def read_order(self, number: str) -> ProductionOrder:
        return await read_production_order(
            self.http, number, plant=self.plant, overdelivery_tolerance_pct=self.overdelivery_tolerance_pct
        )

    async def release_order(self, number: str) -> StepResult:
        return await call_order_function(self.http, number, "ReleaseOrder", "OrderIsReleased")

    async def complete_order(
        self, order: ProductionOrder, cmd: CompleteOrder, *, key: str, retry: bool
    ) -> StepResult:
        return await call_order_function(self.http, order.number, "TechlyCmpltOrder", "OrderIsTechnicallyCompleted")

    # --- confirmations -------------------------------------------------------------------------

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

    async def confirm_operation(
        self, order: ProductionOrder, cmd: ConfirmOperation, *, key: str, retry: bool
    ) -> StepResult:
        if retry:
            existing = await self._find_confirmation(key)
            if existing is not None:
                return confirmation_result(existing, None, replayed=True)
        body = confirmation_body(order, cmd, key)
        try:
            response = await self.http.post(CONF, "ProdnOrdConf2", entity="ProdnOrdConf2", body=body)
        except BusinessRejection:
            # E.g. SAP refuses a duplicate ExternalSystemConfirmation: the posting already exists.
            existing = await self._find_confirmation(key)
            if existing is not None:
                return confirmation_result(existing, None, replayed=True)
            raise
        return confirmation_result(response.d or {}, response, replayed=False)

    # --- material documents --------------------------------------------------------------------

    async def _find_material_document(self, key: str) -> dict[str, Any] | None:
        reference, text = matdoc_keys(key)
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

    async def _post_material_document(
        self, items: list[dict[str, Any]], movement_type: str, *, key: str, retry: bool,
        posting_date: date | None = None,
    ) -> StepResult:
        if retry:
            existing = await self._find_material_document(key)
            if existing is not None:
                return matdoc_result(existing, None, replayed=True)
        body = material_document_body(items, movement_type, key, posting_date)
        response = await self.http.post(
            MATDOC, "A_MaterialDocumentHeader", entity="A_MaterialDocumentHeader", body=body
        )
        return matdoc_result(response.d or {}, response, replayed=False)

    async def goods_movement(
        self, order: ProductionOrder, cmd: GoodsMovement, *, key: str, retry: bool
    ) -> StepResult:
        return await self._post_material_document(goods_movement_items(order, cmd), cmd.items[0].movement_type,
                                                  key=key, retry=retry, posting_date=cmd.posting_date)

    async def goods_receipt(
        self, order: ProductionOrder, cmd: GoodsReceipt, *, key: str, retry: bool
    ) -> StepResult:
        return await self._post_material_document([goods_receipt_item(order, cmd)], "101", key=key, retry=retry,
                                                  posting_date=cmd.posting_date)

    # --- usage decision ------------------------------------------------------------------------

    async def usage_decision(
        self, order: ProductionOrder, cmd: UsageDecision, *, key: str, retry: bool
    ) -> StepResult:
        ud_code = self.ud_codes[cmd.decision]
        _, code, _ = ud_code
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
        body = usage_decision_body(lot, order.plant, ud_code)
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
        if retry:
            existing = await self._find_notification(notification_reference(key))
            if existing is not None:
                return StepResult(
                    documents=[f"MaintenanceNotification {existing.get('MaintenanceNotification')}"], replayed=True
                )
        body = notification_body(order, cmd, key, self.notification_type)
        response = await self.http.post(PM, "MaintenanceNotification", entity="MaintenanceNotification", body=body)
        number = (response.d or {}).get("MaintenanceNotification")
        return StepResult(documents=[f"MaintenanceNotification {number}"], message=response.message)
