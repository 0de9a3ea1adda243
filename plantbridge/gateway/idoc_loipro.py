"""LOIPRO (production order) IDocs as XML: header E1AFKOL, status E1JSTKL, operations E1AFVOL,
components E1RESBL, into canonical `ProductionOrder`s.

Both plain IDoc-XML and the IDoc-SOAP form (`urn:sap-com:document:sap:idoc:soap:messages`, as
S/4HANA sends it) are read: element names are matched without their namespace.

Hostile XML: the body is parsed by `defusedxml`, which refuses any DOCTYPE, entity declaration or
external reference while parsing (the check sits in the parser's own callbacks, so it holds at any
position in the document and in any encoding the parser accepts: a DTD behind kilobytes of padding,
or in a UTF-16 body, is refused as surely as one on the first line). Nothing is ever expanded or
fetched; the gateway answers 422 and keeps the raw body as a dead letter.
"""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as defused_fromstring
from pydantic import ValidationError

from plantbridge.canonical.order import ProductionOrder

IDOC_SOAP_NS = "urn:sap-com:document:sap:idoc:soap:messages"
RELEASED = "I0002"  # system status REL
TECO, LOCKED, CLOSED = "I0045", "I0043", "I0046"  # TECO, LKD, CLSD (ORDER-FACTS 1.6, 3.8)
DELETED = frozenset({"I0076", "I0013"})  # DLFL, DLT


class IdocError(ValueError):
    """The IDoc cannot be read; the message says where."""


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children(el: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in el if _local(c.tag) == name]


def _text(el: ET.Element, name: str) -> str | None:
    for c in el:
        if _local(c.tag) == name:
            value = (c.text or "").strip()
            return value or None
    return None


def _date(value: str | None) -> date | None:
    if not value or value.strip("0") == "":
        return None
    try:
        return date(int(value[:4]), int(value[4:6]), int(value[6:8]))
    except ValueError:
        return None


def _qty(value: str | None, uom: str | None, where: str) -> dict[str, str]:
    if value is None or uom is None:
        raise IdocError(f"{where}: quantity and unit are required")
    try:
        Decimal(value)
    except InvalidOperation:
        raise IdocError(f"{where}: {value[:30]!r} is not a quantity") from None
    return {"quantity": value, "uom": uom}


def _material(el: ET.Element) -> str | None:
    return _text(el, "MATNR_LONG") or _text(el, "MATNR")


def parse_xml(xml: bytes) -> ET.Element:
    """The document's root; no DTD, no entity declaration, no external reference (anywhere)."""
    try:
        root: ET.Element = defused_fromstring(xml, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as err:
        raise IdocError(f"IDoc XML must not contain a DOCTYPE, entity declarations or external references "
                        f"({type(err).__name__})") from None
    except ET.ParseError as err:
        raise IdocError(f"the IDoc is not well-formed XML: {err}") from None
    return root


def parse_loipro(xml: bytes, plant_map: Mapping[str, str] | None = None) -> list[ProductionOrder]:
    """Every order of a LOIPRO IDoc (one or more IDOC elements); `released` from status I0002.

    `plant_map` maps the IDoc's WERKS to the canonical plant where they differ (e.g. a five-letter
    plant of an SAP DM landscape).
    """
    root = parse_xml(xml)
    if not _local(root.tag).startswith("LOIPRO"):
        raise IdocError(f"expected a LOIPRO IDoc, got root element {_local(root.tag)!r}")
    idocs = _children(root, "IDOC")
    if not idocs:
        raise IdocError("the LOIPRO document has no IDOC element")
    orders: list[ProductionOrder] = []
    for n, idoc in enumerate(idocs, start=1):
        for header in _children(idoc, "E1AFKOL"):
            orders.append(_order(header, f"IDOC {n}", plant_map or {}))
    if not orders:
        raise IdocError("the IDoc has no E1AFKOL (order header) segment")
    return orders


def _order(header: ET.Element, where: str, plant_map: Mapping[str, str]) -> ProductionOrder:
    number = _text(header, "AUFNR")
    where = f"{where} E1AFKOL {number or '?'}"
    if number is None:
        raise IdocError(f"{where}: AUFNR (order number) is missing")
    werks = _text(header, "WERKS")
    if werks is None:
        raise IdocError(f"{where}: WERKS (plant) is missing")
    plant = plant_map.get(werks, werks)
    statuses = {_text(s, "STAT") for s in _children(header, "E1JSTKL")}
    operations: list[dict[str, Any]] = []
    components: list[dict[str, Any]] = []
    for seq in _children(header, "E1AFFLL"):
        for op in _children(seq, "E1AFVOL"):
            vornr = _text(op, "VORNR")
            if vornr is None:
                raise IdocError(f"{where}: an E1AFVOL has no VORNR")
            op_where = f"{where} E1AFVOL {vornr}"
            if "I0013" in {_text(s, "STAT") for s in _children(op, "E1JSTVL")}:
                continue  # SAP still sends a deleted operation, with status I0013 (ORDER-FACTS 3.5)
            operations.append({
                "number": vornr,
                "work_center": _text(op, "ARBPL") or "",
                "control_key": (_text(op, "STEUS") or "PP01")[:4],
                "description": (_text(op, "LTXA1") or "")[:200],
                "planned_qty": _qty(_text(op, "MGVRG"), _text(op, "MEINH") or _text(header, "GMEIN"), op_where),
            })
            for comp in _children(op, "E1RESBL"):
                components.append(_component(comp, vornr, f"{op_where} E1RESBL"))
    for comp in _children(header, "E1RESBL"):  # components not assigned below an operation
        components.append(_component(comp, None, f"{where} E1RESBL"))
    data: dict[str, Any] = {
        "number": number,
        "plant": plant,
        "material": _material(header) or "",
        "description": (_text(header, "KTEXT") or "")[:200],
        "quantity": _qty(_text(header, "GAMNG"), _text(header, "GMEIN"), where),
        "order_type": (_text(header, "AUART") or "PP01")[:4],
        "start_date": _date(_text(header, "GSTRP")),
        "end_date": _date(_text(header, "GLTRP")),
        "released": RELEASED in statuses,
        "erp_status": {"technically_completed": TECO in statuses, "locked": LOCKED in statuses,
                       "marked_for_deletion": bool(statuses & DELETED), "closed": CLOSED in statuses},
        "erp_system": "sap_s4",
        "operations": operations,
        "components": components,
    }
    try:
        order = ProductionOrder.model_validate(data)
    except ValidationError as err:
        first = err.errors(include_url=False)[0]
        loc = ".".join(str(p) for p in first["loc"])
        hint = ""
        if first["loc"][:1] == ("plant",):
            hint = f" (WERKS {werks!r}: map it to a canonical plant code of up to 4 characters)"
        raise IdocError(f"{where}: {loc}: {first['msg']}{hint}") from None
    # E1AFKOL has no change date (ORDER-FACTS 3.10): the order's version is a hash of its content.
    return order.model_copy(update={"version": content_version(order)})


def content_version(order: ProductionOrder) -> str:
    """``sha:<16 hex>`` of the order's content (for ERPs and formats without a last-change stamp)."""
    body = order.model_dump_json(exclude={"version"}).encode()
    return "sha:" + hashlib.sha256(body).hexdigest()[:16]


def _component(comp: ET.Element, operation: str | None, where: str) -> dict[str, Any]:
    material = _material(comp)
    if material is None:
        raise IdocError(f"{where}: MATNR is missing")
    posnr = _text(comp, "POSNR") or "0010"
    return {
        "item": posnr[-4:],
        "material": material,
        "quantity": _qty(_text(comp, "BDMNG"), _text(comp, "MEINS"), f"{where} {posnr}"),
        "operation": _text(comp, "VORNR") or operation,
        "backflush": (_text(comp, "RGEKZ") or "") == "X",
        "storage_location": _text(comp, "LGORT"),
        "batch": _text(comp, "CHARG"),
        "reservation": _text(comp, "RSNUM"),
        "reservation_item": _text(comp, "RSPOS"),
    }
