"""The SAP ERP connector over RFC (classic BAPIs), for SAP ECC and S/4HANA on-premise.

pyrfc (SAP's NW RFC SDK binding) is the optional extra ``sap-rfc``; it is imported only by
:meth:`SapRfcConnector.from_params`. The connector itself takes any object with
``call(func_name, **params) -> dict`` and ``close()`` (:class:`RfcConnection`).

Every method runs its whole logical unit of work (look-up, BAPI, ``BAPI_TRANSACTION_COMMIT`` or
``BAPI_TRANSACTION_ROLLBACK``) in one worker thread (``asyncio.to_thread``) under a per-connector
lock: an RFC connection is not thread-safe and a LUW must not interleave with another.
``BAPI_TRANSACTION_COMMIT`` (``WAIT='X'``) is called exactly once per successful posting and never
after an error; any E/A message or exception after a BAPI that needs a commit is followed by
``BAPI_TRANSACTION_ROLLBACK``. Errors are classified in :mod:`sap_rfc_messages`.

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
padded to 12 digits (``sap_order_number``).
"""

from __future__ import annotations

import asyncio
import importlib
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

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
from plantbridge.canonical.units import to_sap
from plantbridge.connectors.errors import BusinessRejection, ConnectorError, TransientError
from plantbridge.connectors.ports import CommandDispatch
from plantbridge.connectors.sap_rfc_messages import (
    SYSTEM,
    Outcome,
    RfcConnection,
    classify_exception,
    info_text,
    messages,
)

__all__ = ["GM_CODES", "RfcConnection", "SapRfcConnector", "UdCode", "goods_movement_header_text"]

T = TypeVar("T")

_KEY_RE = re.compile(r"^[0-9A-F]{32}$")

# BAPI_GOODSMVT_CREATE GOODSMVT_CODE per movement type: 02 goods receipt for order (MB31),
# 03 goods issue (MB1A), 05 other goods receipt (MB1C).
GM_CODES: dict[str, str] = {
    "101": "02",
    "102": "02",
    "261": "03",
    "262": "03",
    "551": "03",
    "552": "03",
    "531": "05",
    "532": "05",
}
NOTIF_KEY_PREFIX = "plantbridge key "


@dataclass(frozen=True)
class UdCode:
    """A usage-decision code (QPAC): selected set, code group, code."""

    selected_set: str
    code_group: str
    code: str


DEFAULT_UD_CODES: dict[str, UdCode] = {
    "release": UdCode("01", "01", "A"),
    "rework": UdCode("01", "01", "R"),
    "scrap": UdCode("01", "01", "S"),
}


def goods_movement_header_text(key: str, index: int = 0) -> str:
    """HEADER_TXT (CHAR25) of the ``index``-th material document of a posting: key[:24] + index."""
    if not 0 <= index <= 9:
        raise ValueError("a goods movement command yields at most 10 material documents")
    return f"{key[:24]}{index}"


def sap_date(day: date | None) -> str:
    """A command's posting date (the plant-local date of the event) as SAP's DATS, else today (UTC)."""
    return (day or datetime.now(UTC).date()).strftime("%Y%m%d")


def _qty(value: Decimal) -> str:
    return f"{value.normalize():f}" if value == value.to_integral() else f"{value:f}"


def _strip_zeros(value: Any) -> str:
    text = str(value or "").strip()
    if not text.isdigit():
        return text
    return text.lstrip("0") or "0"


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
        self.plant = plant
        self.notif_type = notif_type
        self.ud_codes = dict(ud_codes or DEFAULT_UD_CODES)
        self.notif_lookback_days = notif_lookback_days
        self.notif_lookback_max = notif_lookback_max
        self._lock = threading.Lock()

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
        with self._lock:
            self.connection.close()

    # -- plumbing --------------------------------------------------------------------------------
    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        def locked() -> T:
            with self._lock:
                return fn(*args)

        return await asyncio.to_thread(locked)

    def _call(self, func: str, **params: Any) -> dict[str, Any]:
        try:
            return self.connection.call(func, **params)
        except ConnectorError:
            raise
        except Exception as exc:
            mapped = classify_exception(exc, func)
            if mapped is None:
                raise
            raise mapped from exc

    def _rollback(self) -> None:
        try:
            self.connection.call("BAPI_TRANSACTION_ROLLBACK")
        except Exception:  # best effort: the session may be gone already
            pass

    def _commit(self) -> Outcome:
        result = self._call("BAPI_TRANSACTION_COMMIT", WAIT="X")
        outcome = Outcome("BAPI_TRANSACTION_COMMIT", messages(result.get("RETURN")))
        if (err := outcome.error()) is not None:
            raise err
        return outcome

    def _post(
        self, func: str, extract: Callable[[dict[str, Any]], list[Any]], **params: Any
    ) -> tuple[dict[str, Any], Outcome]:
        """Call a BAPI that needs a commit: on E/A or any error roll back, else commit once."""
        try:
            result = self._call(func, **params)
            outcome = Outcome(func, messages(*extract(result)))
            if (err := outcome.error()) is not None:
                raise err
        except BaseException:
            self._rollback()
            raise
        self._commit()
        return result, outcome

    def _read_table(self, table: str, fields: list[str], where: list[str], rows: int = 0) -> list[dict[str, str]]:
        result = self._call(
            "RFC_READ_TABLE",
            QUERY_TABLE=table,
            DELIMITER="|",
            ROWCOUNT=rows,
            OPTIONS=[{"TEXT": line} for line in where],
            FIELDS=[{"FIELDNAME": f} for f in fields],
        )
        names = [str(f.get("FIELDNAME", "")).strip() for f in result.get("FIELDS", [])] or fields
        out = []
        for row in result.get("DATA", []):
            values = [v.strip() for v in str(row.get("WA", "")).split("|")]
            out.append(dict(zip(names, values, strict=False)))
        return out

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
        return await self._run(self._confirm, order, cmd, key, retry)

    def find_confirmation(self, order: ProductionOrder, key: str) -> list[str]:
        """Earlier confirmations carrying ``key`` in EX_IDENT (AFRU-EXTID), as document strings."""
        rows = self._read_table("AFRU", ["RUECK", "RMZHL", "AUFNR", "STOKZ"], [f"EXTID = '{key}'"])
        aufnr = _strip_zeros(sap_order_number(order.number))
        return [
            f"CONF {r.get('RUECK', '')}/{r.get('RMZHL', '')}"
            for r in rows
            if _strip_zeros(r.get("AUFNR", "")) == aufnr and r.get("STOKZ", "") != "X"
        ]

    def _confirm(self, order: ProductionOrder, cmd: ConfirmOperation, key: str, retry: bool) -> StepResult:
        if retry and (found := self.find_confirmation(order, key)):
            return StepResult(documents=found, message="found by EX_IDENT", replayed=True)
        ticket: dict[str, Any] = {
            "ORDERID": sap_order_number(order.number),
            "OPERATION": cmd.operation,
            "PLANT": self._plant(order),
            "WORK_CNTR": cmd.work_center[:8],
            "YIELD": _qty(cmd.yield_qty.quantity),
            "CONF_QUAN_UNIT": to_sap(cmd.yield_qty.uom),
            "FIN_CONF": "X" if cmd.final else "",
            "EX_IDENT": key,
            "POSTG_DATE": sap_date(cmd.posting_date),
        }
        if cmd.scrap_qty is not None:
            ticket["SCRAP"] = _qty(cmd.scrap_qty.quantity)
        if cmd.rework_qty is not None:
            ticket["REWORK"] = _qty(cmd.rework_qty.quantity)
        if cmd.reason:
            ticket["CONF_TEXT"] = cmd.reason[:40]
        if cmd.personnel and cmd.personnel.isdigit() and len(cmd.personnel) <= 8:
            ticket["PERS_NO"] = cmd.personnel.zfill(8)
        if cmd.activities is not None:
            # Standard value key SAP1: activity 1 setup, 2 machine, 3 labour (plant configuration).
            for i, minutes in enumerate(
                (cmd.activities.setup_min, cmd.activities.machine_min, cmd.activities.labor_min), start=1
            ):
                if minutes:
                    ticket[f"CONF_ACTIVITY{i}"] = _qty(minutes)
                    ticket[f"CONF_ACTI_UNIT{i}"] = "MIN"
        goods = [self._gm_item(order, item) for item in cmd.goods_movements]
        links = [{"INDEX_CONFIRM": 1, "INDEX_GOODSMOV": i} for i in range(1, len(goods) + 1)]
        result, outcome = self._post(
            "BAPI_PRODORDCONF_CREATE_TT",
            lambda r: [r.get("RETURN"), r.get("DETAIL_RETURN")],
            POST_WRONG_ENTRIES="0",
            TESTRUN="",
            TIMETICKETS=[ticket],
            GOODSMOVEMENTS=goods,
            LINK_CONF_GOODSMOV=links,
        )
        documents = [
            f"CONF {str(r.get('CONF_NO', '')).strip()}/{str(r.get('CONF_CNT', '')).strip()}"
            for r in result.get("DETAIL_RETURN", [])
            if str(r.get("CONF_NO", "")).strip()
        ]
        return StepResult(documents=list(dict.fromkeys(documents)), message=info_text([outcome]))

    # -- goods movements -------------------------------------------------------------------------
    def _gm_item(self, order: ProductionOrder, item: GoodsMovementItem) -> dict[str, Any]:
        row: dict[str, Any] = {
            "MATERIAL": item.material,
            "PLANT": self._plant(order),
            "MOVE_TYPE": item.movement_type,
            "ENTRY_QNT": _qty(item.quantity.quantity),
            "ENTRY_UOM": to_sap(item.quantity.uom),
            "ORDERID": sap_order_number(order.number),
        }
        if item.storage_location:
            row["STGE_LOC"] = item.storage_location
        if item.batch:
            row["BATCH"] = item.batch
        if item.reservation:
            row["RESERV_NO"] = item.reservation
            if item.reservation_item:
                row["RES_ITEM"] = item.reservation_item
        if item.movement_type in ("101", "102"):
            row["MVT_IND"] = "F"  # goods movement for a production order
        return row

    def find_material_document(self, order: ProductionOrder, header_text: str) -> str | None:
        rows = self._read_table("MKPF", ["MBLNR", "MJAHR", "XBLNR"], [f"BKTXT = '{header_text}'"])
        ref = sap_order_number(order.number)
        for r in rows:
            if _strip_zeros(r.get("XBLNR", "")) == _strip_zeros(ref):
                return f"MATDOC {r.get('MBLNR', '')}/{r.get('MJAHR', '')}"
        return None

    def _goods(self, order: ProductionOrder, items: list[GoodsMovementItem], key: str, retry: bool,
               posting_date: date | None = None) -> StepResult:
        groups: dict[str, list[GoodsMovementItem]] = {}
        for item in items:
            groups.setdefault(GM_CODES[item.movement_type], []).append(item)
        documents: list[str] = []
        outcomes: list[Outcome] = []
        replayed = False
        for index, (gm_code, group) in enumerate(sorted(groups.items())):
            header_text = goods_movement_header_text(key, index)
            if retry and (found := self.find_material_document(order, header_text)):
                documents.append(found)
                replayed = True
                continue
            result, outcome = self._post(
                "BAPI_GOODSMVT_CREATE",
                lambda r: [r.get("RETURN")],
                GOODSMVT_HEADER={
                    "PSTNG_DATE": sap_date(posting_date),
                    "DOC_DATE": sap_date(posting_date),
                    "HEADER_TXT": header_text,
                    "REF_DOC_NO": sap_order_number(order.number)[:16],
                },
                GOODSMVT_CODE={"GM_CODE": gm_code},
                GOODSMVT_ITEM=[self._gm_item(order, item) for item in group],
            )
            head = result.get("GOODSMVT_HEADRET") or {}
            number = str(result.get("MATERIALDOCUMENT") or head.get("MAT_DOC") or "").strip()
            year = str(result.get("MATDOCUMENTYEAR") or head.get("DOC_YEAR") or "").strip()
            documents.append(f"MATDOC {number}/{year}")
            outcomes.append(outcome)
        message = info_text(outcomes) or ("found by header text" if replayed else None)
        # Replayed only when every material document was found (nothing was posted now).
        return StepResult(documents=documents, message=message, replayed=replayed and not outcomes)

    async def goods_movement(self, order: ProductionOrder, cmd: GoodsMovement, *, key: str, retry: bool) -> StepResult:
        self._check_key(key)
        return await self._run(self._goods, order, list(cmd.items), key, retry, cmd.posting_date)

    async def goods_receipt(self, order: ProductionOrder, cmd: GoodsReceipt, *, key: str, retry: bool) -> StepResult:
        self._check_key(key)
        item = GoodsMovementItem(
            material=order.material,
            quantity=Quantity(quantity=cmd.quantity.quantity, uom=cmd.quantity.uom),
            movement_type="101",
            storage_location=cmd.storage_location or order.storage_location,
            batch=cmd.batch or order.batch,
        )
        return await self._run(self._goods, order, [item], key, retry, cmd.posting_date)

    # -- order status ----------------------------------------------------------------------------
    def _order_status(self, number: str) -> str:
        result = self._call("BAPI_PRODORD_GET_DETAIL", NUMBER=sap_order_number(number), ORDER_OBJECTS={"HEADER": "X"})
        header = result.get("HEADER") or []
        return " ".join(str(h.get("SYSTEM_STATUS", "")) for h in header)

    def _order_bapi(self, func: str, number: str) -> Outcome:
        _, outcome = self._post(
            func,
            lambda r: [r.get("RETURN"), r.get("DETAIL_RETURN")],
            ORDERS=[{"ORDER_NUMBER": sap_order_number(number)}],
        )
        return outcome

    async def release_order(self, number: str) -> StepResult:
        def run() -> StepResult:
            outcome = self._order_bapi("BAPI_PRODORD_RELEASE", number)
            return StepResult(documents=[f"REL {number}"], message=info_text([outcome]))

        return await self._run(run)

    async def complete_order(self, order: ProductionOrder, cmd: CompleteOrder, *, key: str, retry: bool) -> StepResult:
        def run() -> StepResult:
            document = f"TECO {order.number}"
            if retry and "TECO" in self._order_status(order.number).split():
                return StepResult(documents=[document], message="order already technically completed", replayed=True)
            outcome = self._order_bapi("BAPI_PRODORD_COMPLETE_TECH", order.number)
            return StepResult(documents=[document], message=info_text([outcome]))

        return await self._run(run)

    # -- quality ---------------------------------------------------------------------------------
    def _lots(self, order: ProductionOrder, *, decided: bool) -> list[str]:
        flags = {"STATUS_UD": "X", "STATUS_CREATED": "", "STATUS_RELEASED": ""} if decided else {"STATUS_UD": ""}
        result = self._call(
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
        _, outcome = self._post(
            "BAPI_INSPLOT_SETUSAGEDECISION",
            lambda r: [r.get("RETURN")],
            NUMBER=lot,
            UD_DATA={
                "INSPLOT": lot,
                "UD_SELECTED_SET": code.selected_set,
                "UD_PLANT": self._plant(order),
                "UD_CODE_GROUP": code.code_group,
                "UD_CODE": code.code,
                "UD_FORCE_COMPLETION": "X",
            },
        )
        return StepResult(documents=[f"UD {lot}"], message=info_text([outcome]))

    async def usage_decision(self, order: ProductionOrder, cmd: UsageDecision, *, key: str, retry: bool) -> StepResult:
        return await self._run(self._usage_decision, order, cmd, retry)

    # -- maintenance -----------------------------------------------------------------------------
    def find_notification(self, equipment: str, key: str) -> str | None:
        since = date.today() - timedelta(days=self.notif_lookback_days)
        result = self._call("BAPI_ALM_NOTIF_LIST_EQUI", EQUIPMENT=equipment, NOTIFICATION_DATE=since.strftime("%Y%m%d"))
        numbers = [str(r.get("NOTIF_NO", "")).strip() for r in result.get("NOTIFICATION", []) if r.get("NOTIF_NO")]
        marker = f"{NOTIF_KEY_PREFIX}{key}"
        for number in sorted(numbers, reverse=True)[: self.notif_lookback_max]:
            detail = self._call("BAPI_ALM_NOTIF_GET_DETAIL", NUMBER=number)
            if any(str(line.get("TEXT_LINE", "")).strip() == marker for line in detail.get("NOTLONGTXT", [])):
                return number
        return None

    def _notification(self, order: ProductionOrder, cmd: MaintenanceNotification, key: str, retry: bool) -> StepResult:
        if retry and (found := self.find_notification(cmd.equipment, key)):
            return StepResult(documents=[f"NOTIF {found}"], message="found by long-text key", replayed=True)
        text = [f"{NOTIF_KEY_PREFIX}{key}", f"order {order.number} plant {order.plant}"]
        if cmd.work_center:
            text.append(f"work center {cmd.work_center}")
        desc = cmd.description
        text.extend(desc[i : i + 132] for i in range(0, len(desc), 132))
        try:
            created = self._call(
                "BAPI_ALM_NOTIF_CREATE",
                NOTIF_TYPE=self.notif_type,
                NOTIFHEADER={"EQUIPMENT": cmd.equipment, "SHORT_TEXT": desc[:40], "PRIORITY": str(cmd.priority)},
                LONGTEXTS=[{"OBJTYPE": "QMEL", "FORMAT_COL": "*", "TEXT_LINE": line} for line in text],
            )
            create_outcome = Outcome("BAPI_ALM_NOTIF_CREATE", messages(created.get("RETURN")))
            if (err := create_outcome.error()) is not None:
                raise err
            temp = str((created.get("NOTIFHEADER_EXPORT") or {}).get("NOTIF_NO", "")).strip()
            saved = self._call("BAPI_ALM_NOTIF_SAVE", NUMBER=temp)
            save_outcome = Outcome("BAPI_ALM_NOTIF_SAVE", messages(saved.get("RETURN")))
            if (err := save_outcome.error()) is not None:
                raise err
        except BaseException:
            self._rollback()
            raise
        self._commit()
        number = str((saved.get("NOTIFHEADER") or {}).get("NOTIF_NO", "")).strip() or temp
        return StepResult(documents=[f"NOTIF {number}"], message=info_text([create_outcome, save_outcome]))

    async def maintenance_notification(
        self, order: ProductionOrder, cmd: MaintenanceNotification, *, key: str, retry: bool
    ) -> StepResult:
        self._check_key(key)
        return await self._run(self._notification, order, cmd, key, retry)
