"""The SAP ERP connector over RFC (classic BAPIs), for SAP ECC and S/4HANA on-premise.

pyrfc (SAP's NW RFC SDK binding) is the optional extra ``sap-rfc``; it is imported only by
:meth:`SapRfcConnector.from_params`. The connector itself takes any object with
``call(func_name, **params) -> dict`` and ``close()`` (:class:`RfcConnection`).

Every method runs its whole logical unit of work (look-up, BAPI, ``BAPI_TRANSACTION_COMMIT`` or
``BAPI_TRANSACTION_ROLLBACK``) in one worker thread under a per-connector lock
(:class:`sap_rfc_luw.RfcLuw`: an RFC connection is not thread-safe and a LUW must not interleave
with another). ``BAPI_TRANSACTION_COMMIT`` (``WAIT='X'``) is called exactly once per successful
posting and never after an error; any E/A message or exception after a BAPI that needs a commit is
followed by ``BAPI_TRANSACTION_ROLLBACK``. Errors are classified in :mod:`sap_rfc_messages`.

External keys (``key``: 32 uppercase hex characters) and look-ups (``retry=True``):

* Confirmations (``BAPI_PRODORDCONF_CREATE_TT``): ``TIMETICKETS-EX_IDENT`` (CHAR32) = key, as is.
  SAP stores it in ``AFRU-EXTID`` (next to ``EXNAM/EXERD/EXERZ`` = ``EX_CREATED_BY/DATE/TIME``).
  No BAPI selects confirmations by it (``BAPI_PRODORDCONF_GETLIST`` has no EX_IDENT), so the
  look-up is ``RFC_READ_TABLE`` on ``AFRU`` where ``EXTID = key``, checking ``AUFNR``.
  Documents: ``CONF {CONF_NO}/{CONF_CNT}``.
* Goods movements (``BAPI_GOODSMVT_CREATE``): ``GOODSMVT_HEADER-HEADER_TXT`` is CHAR25, so it
  carries ``key[:24]`` + the index (0-9) of the posting within the command (items needing
  different ``GM_CODE`` s are posted separately, each with its own commit); 96 bits of the key
  make a collision negligible, and the look-up also compares ``REF_DOC_NO`` (CHAR16), which
  carries the order number. Look-up: ``RFC_READ_TABLE`` on ``MKPF`` (a compatibility view over
  ``MATDOC`` in S/4HANA) where ``BKTXT = header text``. Documents: ``MATDOC {number}/{year}``.
* Maintenance notifications (``BAPI_ALM_NOTIF_CREATE`` + ``BAPI_ALM_NOTIF_SAVE``): the classic
  header ``BAPI2080_NOTHDRI`` has no external-reference field (the OData API's
  ``MaintNotifExtReferenceNumber`` is not exposed there, and ``SHORT_TEXT`` is only CHAR40), so
  the first long-text line is ``plantbridge key {key}``. Look-up: ``BAPI_ALM_NOTIF_LIST_EQUI``
  for the equipment (notifications of the last ``notif_lookback_days``), then
  ``BAPI_ALM_NOTIF_GET_DETAIL`` of the newest ``notif_lookback_max`` for that line.
  Documents: ``NOTIF {number}``.
* Technical completion (``BAPI_PRODORD_COMPLETE_TECH``) has no key field; the look-up reads
  ``BAPI_PRODORD_GET_DETAIL`` and treats system status ``TECO`` as done. Document ``TECO {order}``.
* Usage decision (``BAPI_INSPLOT_SETUSAGEDECISION``): the lot is the order's inspection lot
  (``BAPI_INSPLOT_GETLIST`` by order); the look-up finds a lot of the order that already has a
  usage decision. Document ``UD {lot}``. Codes per decision come from ``ud_codes``.

Units are posted as SAP internal units (``canonical.units.to_sap``); numeric order numbers are
padded to 12 digits (``sap_order_number``). The BAPI structures and the parsers of their answers
are in :mod:`sap_rfc_bapi`; this module is the connector: which BAPIs a command needs, in one LUW.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

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
from plantbridge.canonical.fields import Quantity, sap_order_number
from plantbridge.canonical.order import ProductionOrder
from plantbridge.connectors.errors import BusinessRejection, TransientError
from plantbridge.connectors.ports import CommandDispatch
from plantbridge.connectors.sap_rfc_bapi import (
    DEFAULT_UD_CODES,
    UdCode,
    by_gm_code,
    confirmation_documents,
    gm_item,
    goods_header,
    goods_movement_header_text,
    has_key_line,
    material_document_of_order,
    notification_long_text,
    posted_confirmations,
    posted_material_document,
    time_ticket,
    ud_data,
)
from plantbridge.connectors.sap_rfc_luw import RfcLuw
from plantbridge.connectors.sap_rfc_messages import (
    SYSTEM,
    Outcome,
    RfcConnection,
    classify_exception,
    info_text,
    messages,
)

__all__ = ["RfcConnection", "SapRfcConnector"]

_KEY_RE = re.compile(r"^[0-9A-F]{32}$")


class SapRfcConnector(CommandDispatch):
    """ErpConnector over RFC. ``plant`` overrides the order's plant in postings when given."""

    def __init__(
        self,
        connection: RfcConnection,
        *,
        plant: str | None = None,
        notif_type: str = "M2",
        ud_codes: Mapping[str, UdCode] | None = None,
        notif_lookback_days: int = 7,
        notif_lookback_max: int = 20,
    ) -> None:
        self.connection = connection
        self.luw = RfcLuw(connection)
        self.plant = plant
        self.notif_type = notif_type
        self.ud_codes = dict(ud_codes or DEFAULT_UD_CODES)
        self.notif_lookback_days = notif_lookback_days
        self.notif_lookback_max = notif_lookback_max

    @classmethod
    def from_params(cls, *, plant: str | None = None, **conn_params: Any) -> SapRfcConnector:
        """Open a ``pyrfc.Connection`` (``ashost``, ``sysnr``, ``client``, ``user``, ``passwd``, ...)."""
        try:
            pyrfc = importlib.import_module("pyrfc")
        except ImportError as err:
            raise RuntimeError(
                "the SAP RFC connector needs pyrfc and SAP's NW RFC SDK: install the extra "
                "'plantbridge[sap-rfc]' on a machine with the SDK"
            ) from err
        try:
            connection = pyrfc.Connection(**conn_params)
        except Exception as exc:
            mapped = classify_exception(exc, "RFC_OPEN")
            if mapped is None:
                raise
            raise mapped from exc
        return cls(connection, plant=plant)

    def close(self) -> None:
        self.luw.close()

    def _plant(self, order: ProductionOrder) -> str:
        return self.plant or order.plant

    @staticmethod
    def _check_key(key: str) -> None:
        if not _KEY_RE.fullmatch(key):
            raise BusinessRejection(
                f"external key {key[:40]!r} is not 32 uppercase hex characters (canonical.commands.external_key)",
                system=SYSTEM,
                code="PLANTBRIDGE/KEY",
            )

    # -- confirmations ---------------------------------------------------------------------------
    async def confirm_operation(
        self, order: ProductionOrder, cmd: ConfirmOperation, *, key: str, retry: bool
    ) -> StepResult:
        self._check_key(key)
        return await self.luw.run(self._confirm, order, cmd, key, retry)

    def find_confirmation(self, order: ProductionOrder, key: str) -> list[str]:
        """Earlier confirmations carrying ``key`` in EX_IDENT (AFRU-EXTID), as document strings."""
        rows = self.luw.read_table("AFRU", ["RUECK", "RMZHL", "AUFNR", "STOKZ"], [f"EXTID = '{key}'"])
        return confirmation_documents(rows, order)

    def _confirm(self, order: ProductionOrder, cmd: ConfirmOperation, key: str, retry: bool) -> StepResult:
        if retry and (found := self.find_confirmation(order, key)):
            return StepResult(documents=found, message="found by EX_IDENT", replayed=True)
        ticket = time_ticket(order, cmd, key, self._plant(order))
        goods = [gm_item(order, item, self._plant(order)) for item in cmd.goods_movements]
        links = [{"INDEX_CONFIRM": 1, "INDEX_GOODSMOV": i} for i in range(1, len(goods) + 1)]
        result, outcome = self.luw.post(
            "BAPI_PRODORDCONF_CREATE_TT",
            lambda r: [r.get("RETURN"), r.get("DETAIL_RETURN")],
            POST_WRONG_ENTRIES="0",
            TESTRUN="",
            TIMETICKETS=[ticket],
            GOODSMOVEMENTS=goods,
            LINK_CONF_GOODSMOV=links,
        )
        return StepResult(documents=posted_confirmations(result), message=info_text([outcome]))

    # -- goods movements -------------------------------------------------------------------------
    def find_material_document(self, order: ProductionOrder, header_text: str) -> str | None:
        rows = self.luw.read_table("MKPF", ["MBLNR", "MJAHR", "XBLNR"], [f"BKTXT = '{header_text}'"])
        return material_document_of_order(rows, order)

    def _goods(self, order: ProductionOrder, items: list[GoodsMovementItem], key: str, retry: bool,
               posting_date: date | None = None) -> StepResult:
        documents: list[str] = []
        outcomes: list[Outcome] = []
        replayed = False
        for index, (gm_code, group) in enumerate(by_gm_code(items)):
            header_text = goods_movement_header_text(key, index)
            if retry and (found := self.find_material_document(order, header_text)):
                documents.append(found)
                replayed = True
                continue
            result, outcome = self.luw.post(
                "BAPI_GOODSMVT_CREATE",
                lambda r: [r.get("RETURN")],
                GOODSMVT_HEADER=goods_header(order, header_text, posting_date),
                GOODSMVT_CODE={"GM_CODE": gm_code},
                GOODSMVT_ITEM=[gm_item(order, item, self._plant(order)) for item in group],
            )
            documents.append(posted_material_document(result))
            outcomes.append(outcome)
        message = info_text(outcomes) or ("found by header text" if replayed else None)
        # Replayed only when every material document was found (nothing was posted now).
        return StepResult(documents=documents, message=message, replayed=replayed and not outcomes)

    async def goods_movement(self, order: ProductionOrder, cmd: GoodsMovement, *, key: str, retry: bool) -> StepResult:
        self._check_key(key)
        return await self.luw.run(self._goods, order, list(cmd.items), key, retry, cmd.posting_date)

    async def goods_receipt(self, order: ProductionOrder, cmd: GoodsReceipt, *, key: str, retry: bool) -> StepResult:
        self._check_key(key)
        item = GoodsMovementItem(
            material=order.material,
            quantity=Quantity(quantity=cmd.quantity.quantity, uom=cmd.quantity.uom),
            movement_type="101",
            storage_location=cmd.storage_location or order.storage_location,
            batch=cmd.batch or order.batch,
        )
        return await self.luw.run(self._goods, order, [item], key, retry, cmd.posting_date)

    # -- order status ----------------------------------------------------------------------------
    def _order_status(self, number: str) -> str:
        result = self.luw.call(
            "BAPI_PRODORD_GET_DETAIL", NUMBER=sap_order_number(number), ORDER_OBJECTS={"HEADER": "X"}
        )
        header = result.get("HEADER") or []
        return " ".join(str(h.get("SYSTEM_STATUS", "")) for h in header)

    def _order_bapi(self, func: str, number: str) -> Outcome:
        _, outcome = self.luw.post(
            func,
            lambda r: [r.get("RETURN"), r.get("DETAIL_RETURN")],
            ORDERS=[{"ORDER_NUMBER": sap_order_number(number)}],
        )
        return outcome

    async def release_order(self, number: str) -> StepResult:
        def run() -> StepResult:
            outcome = self._order_bapi("BAPI_PRODORD_RELEASE", number)
            return StepResult(documents=[f"REL {number}"], message=info_text([outcome]))

        return await self.luw.run(run)

    async def complete_order(self, order: ProductionOrder, cmd: CompleteOrder, *, key: str, retry: bool) -> StepResult:
        def run() -> StepResult:
            document = f"TECO {order.number}"
            if retry and "TECO" in self._order_status(order.number).split():
                return StepResult(documents=[document], message="order already technically completed", replayed=True)
            outcome = self._order_bapi("BAPI_PRODORD_COMPLETE_TECH", order.number)
            return StepResult(documents=[document], message=info_text([outcome]))

        return await self.luw.run(run)

    # -- quality ---------------------------------------------------------------------------------
    def _lots(self, order: ProductionOrder, *, decided: bool) -> list[str]:
        flags = {"STATUS_UD": "X", "STATUS_CREATED": "", "STATUS_RELEASED": ""} if decided else {"STATUS_UD": ""}
        result = self.luw.call(
            "BAPI_INSPLOT_GETLIST",
            ORDER=sap_order_number(order.number),
            PLANT=self._plant(order),
            MAX_ROWS=100,
            **flags,
        )
        # "No lots found" comes back as a message: only a lock matters here (retry later).
        if isinstance(err := Outcome("BAPI_INSPLOT_GETLIST", messages(result.get("RETURN"))).error(), TransientError):
            raise err
        return [str(r.get("INSPLOT", "")).strip() for r in result.get("INSPLOT_LIST", []) if r.get("INSPLOT")]

    def _usage_decision(self, order: ProductionOrder, cmd: UsageDecision, retry: bool) -> StepResult:
        if retry and (done := self._lots(order, decided=True)):
            return StepResult(documents=[f"UD {lot}" for lot in done], message="usage decision exists", replayed=True)
        lots = self._lots(order, decided=False)
        if not lots:
            raise BusinessRejection(
                f"order {order.number} has no inspection lot without a usage decision",
                system=SYSTEM,
                code="PLANTBRIDGE/NO_LOT",
            )
        code = self.ud_codes[cmd.decision]
        lot = lots[0]
        _, outcome = self.luw.post(
            "BAPI_INSPLOT_SETUSAGEDECISION",
            lambda r: [r.get("RETURN")],
            NUMBER=lot,
            UD_DATA=ud_data(lot, self._plant(order), code),
        )
        return StepResult(documents=[f"UD {lot}"], message=info_text([outcome]))

    async def usage_decision(self, order: ProductionOrder, cmd: UsageDecision, *, key: str, retry: bool) -> StepResult:
        return await self.luw.run(self._usage_decision, order, cmd, retry)

    # -- maintenance -----------------------------------------------------------------------------
    def find_notification(self, equipment: str, key: str) -> str | None:
        since = date.today() - timedelta(days=self.notif_lookback_days)
        result = self.luw.call(
            "BAPI_ALM_NOTIF_LIST_EQUI", EQUIPMENT=equipment, NOTIFICATION_DATE=since.strftime("%Y%m%d")
        )
        numbers = [str(r.get("NOTIF_NO", "")).strip() for r in result.get("NOTIFICATION", []) if r.get("NOTIF_NO")]
        for number in sorted(numbers, reverse=True)[: self.notif_lookback_max]:
            detail = self.luw.call("BAPI_ALM_NOTIF_GET_DETAIL", NUMBER=number)
            if has_key_line(detail, key):
                return number
        return None

    def _notification(self, order: ProductionOrder, cmd: MaintenanceNotification, key: str, retry: bool) -> StepResult:
        if retry and (found := self.find_notification(cmd.equipment, key)):
            return StepResult(documents=[f"NOTIF {found}"], message="found by long-text key", replayed=True)
        text = notification_long_text(order, cmd, key)
        desc = cmd.description
        try:
            created = self.luw.call(
                "BAPI_ALM_NOTIF_CREATE",
                NOTIF_TYPE=self.notif_type,
                NOTIFHEADER={"EQUIPMENT": cmd.equipment, "SHORT_TEXT": desc[:40], "PRIORITY": str(cmd.priority)},
                LONGTEXTS=[{"OBJTYPE": "QMEL", "FORMAT_COL": "*", "TEXT_LINE": line} for line in text],
            )
            create_outcome = Outcome("BAPI_ALM_NOTIF_CREATE", messages(created.get("RETURN")))
            if (err := create_outcome.error()) is not None:
                raise err
            temp = str((created.get("NOTIFHEADER_EXPORT") or {}).get("NOTIF_NO", "")).strip()
            saved = self.luw.call("BAPI_ALM_NOTIF_SAVE", NUMBER=temp)
            save_outcome = Outcome("BAPI_ALM_NOTIF_SAVE", messages(saved.get("RETURN")))
            if (err := save_outcome.error()) is not None:
                raise err
        except BaseException:
            self.luw.rollback()
            raise
        self.luw.commit()
        number = str((saved.get("NOTIFHEADER") or {}).get("NOTIF_NO", "")).strip() or temp
        return StepResult(documents=[f"NOTIF {number}"], message=info_text([create_outcome, save_outcome]))

    async def maintenance_notification(
        self, order: ProductionOrder, cmd: MaintenanceNotification, *, key: str, retry: bool
    ) -> StepResult:
        self._check_key(key)
        return await self.luw.run(self._notification, order, cmd, key, retry)
