"""The BAPI structures of the RFC connector: what each posting sends and how the answers are read.

Pure functions, no RFC call: the table rows and structures of ``BAPI_PRODORDCONF_CREATE_TT``,
``BAPI_GOODSMVT_CREATE``, ``BAPI_INSPLOT_SETUSAGEDECISION`` and ``BAPI_ALM_NOTIF_CREATE`` built from
canonical commands (SAP internal units, 12-digit order numbers, DATS dates), where each external key
goes (``EX_IDENT``, ``HEADER_TXT``, the notification's first long-text line), and the parsers of
the BAPIs' answers and of the look-ups' table rows into document strings. Kept apart from the connector
(:mod:`sap_rfc`), which owns the LUW (look-up, BAPI, commit or rollback) and calls these.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from plantbridge.canonical.commands import ConfirmOperation, GoodsMovementItem, MaintenanceNotification
from plantbridge.canonical.fields import sap_order_number
from plantbridge.canonical.order import ProductionOrder
from plantbridge.canonical.units import to_sap

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


def qty(value: Decimal) -> str:
    return f"{value.normalize():f}" if value == value.to_integral() else f"{value:f}"


def strip_zeros(value: Any) -> str:
    text = str(value or "").strip()
    if not text.isdigit():
        return text
    return text.lstrip("0") or "0"


# -- confirmations -------------------------------------------------------------------------------
def confirmation_documents(rows: list[dict[str, str]], order: ProductionOrder) -> list[str]:
    """``AFRU`` rows found by EXTID that belong to the order and are not reversed, as documents."""
    aufnr = strip_zeros(sap_order_number(order.number))
    return [
        f"CONF {r.get('RUECK', '')}/{r.get('RMZHL', '')}"
        for r in rows
        if strip_zeros(r.get("AUFNR", "")) == aufnr and r.get("STOKZ", "") != "X"
    ]


def time_ticket(order: ProductionOrder, cmd: ConfirmOperation, key: str, plant: str) -> dict[str, Any]:
    """The one ``TIMETICKETS`` row of a confirmation, the key in ``EX_IDENT``."""
    ticket: dict[str, Any] = {
        "ORDERID": sap_order_number(order.number),
        "OPERATION": cmd.operation,
        "PLANT": plant,
        "WORK_CNTR": cmd.work_center[:8],
        "YIELD": qty(cmd.yield_qty.quantity),
        "CONF_QUAN_UNIT": to_sap(cmd.yield_qty.uom),
        "FIN_CONF": "X" if cmd.final else "",
        "EX_IDENT": key,
        "POSTG_DATE": sap_date(cmd.posting_date),
    }
    if cmd.scrap_qty is not None:
        ticket["SCRAP"] = qty(cmd.scrap_qty.quantity)
    if cmd.rework_qty is not None:
        ticket["REWORK"] = qty(cmd.rework_qty.quantity)
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
                ticket[f"CONF_ACTIVITY{i}"] = qty(minutes)
                ticket[f"CONF_ACTI_UNIT{i}"] = "MIN"
    return ticket


def posted_confirmations(result: dict[str, Any]) -> list[str]:
    """``CONF {CONF_NO}/{CONF_CNT}`` of each confirmation in ``DETAIL_RETURN``, once each."""
    documents = [
        f"CONF {str(r.get('CONF_NO', '')).strip()}/{str(r.get('CONF_CNT', '')).strip()}"
        for r in result.get("DETAIL_RETURN", [])
        if str(r.get("CONF_NO", "")).strip()
    ]
    return list(dict.fromkeys(documents))


# -- goods movements -----------------------------------------------------------------------------
def gm_item(order: ProductionOrder, item: GoodsMovementItem, plant: str) -> dict[str, Any]:
    """A ``GOODSMVT_ITEM`` / ``GOODSMOVEMENTS`` row for the order."""
    row: dict[str, Any] = {
        "MATERIAL": item.material,
        "PLANT": plant,
        "MOVE_TYPE": item.movement_type,
        "ENTRY_QNT": qty(item.quantity.quantity),
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


def by_gm_code(items: list[GoodsMovementItem]) -> list[tuple[str, list[GoodsMovementItem]]]:
    """The items grouped by ``GM_CODE`` (one material document each), in code order."""
    groups: dict[str, list[GoodsMovementItem]] = {}
    for item in items:
        groups.setdefault(GM_CODES[item.movement_type], []).append(item)
    return sorted(groups.items())


def goods_header(order: ProductionOrder, header_text: str, posting_date: date | None) -> dict[str, Any]:
    """``GOODSMVT_HEADER``: the key's header text, the order number in ``REF_DOC_NO``."""
    return {
        "PSTNG_DATE": sap_date(posting_date),
        "DOC_DATE": sap_date(posting_date),
        "HEADER_TXT": header_text,
        "REF_DOC_NO": sap_order_number(order.number)[:16],
    }


def posted_material_document(result: dict[str, Any]) -> str:
    head = result.get("GOODSMVT_HEADRET") or {}
    number = str(result.get("MATERIALDOCUMENT") or head.get("MAT_DOC") or "").strip()
    year = str(result.get("MATDOCUMENTYEAR") or head.get("DOC_YEAR") or "").strip()
    return f"MATDOC {number}/{year}"


def material_document_of_order(rows: list[dict[str, str]], order: ProductionOrder) -> str | None:
    """The first ``MKPF`` row whose ``XBLNR`` is the order's number, as a document."""
    ref = sap_order_number(order.number)
    for r in rows:
        if strip_zeros(r.get("XBLNR", "")) == strip_zeros(ref):
            return f"MATDOC {r.get('MBLNR', '')}/{r.get('MJAHR', '')}"
    return None


# -- quality and maintenance ---------------------------------------------------------------------
def ud_data(lot: str, plant: str, code: UdCode) -> dict[str, Any]:
    return {
        "INSPLOT": lot,
        "UD_SELECTED_SET": code.selected_set,
        "UD_PLANT": plant,
        "UD_CODE_GROUP": code.code_group,
        "UD_CODE": code.code,
        "UD_FORCE_COMPLETION": "X",
    }


def notification_long_text(order: ProductionOrder, cmd: MaintenanceNotification, key: str) -> list[str]:
    """The long-text lines (132 chars), the first one ``plantbridge key {key}`` for the look-up."""
    text = [f"{NOTIF_KEY_PREFIX}{key}", f"order {order.number} plant {order.plant}"]
    if cmd.work_center:
        text.append(f"work center {cmd.work_center}")
    desc = cmd.description
    text.extend(desc[i : i + 132] for i in range(0, len(desc), 132))
    return text


def has_key_line(detail: dict[str, Any], key: str) -> bool:
    """Whether a ``BAPI_ALM_NOTIF_GET_DETAIL`` answer carries the key's long-text line."""
    marker = f"{NOTIF_KEY_PREFIX}{key}"
    return any(str(line.get("TEXT_LINE", "")).strip() == marker for line in detail.get("NOTLONGTXT", []))
