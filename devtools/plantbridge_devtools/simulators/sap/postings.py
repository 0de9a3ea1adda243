"""Goods movements: material documents and their effect on production orders.

Supported movement types (S/4 standard semantics):

====  ==============================================  =========================================
type  meaning                                         effect in the simulator
====  ==============================================  =========================================
261   goods issue for an order                        component ``WithdrawnQuantity`` +=
262   reversal of 261                                 component ``WithdrawnQuantity`` -=
101   goods receipt for an order                      order item ``MfgOrderItemGoodsReceiptQty`` +=;
                                                      DLV when the planned quantity is reached;
                                                      inspection lot (origin 04) when configured
102   reversal of 101                                 order item goods receipt quantity -=
531   receipt of a by-product from an order           recorded
532   reversal of 531                                 recorded
551   withdrawal for scrapping                        recorded
552   reversal of 551                                 recorded
====  ==============================================  =========================================

Postings are refused when the order is locked (MC/601), not released or closed (BS/013), or the
posting period is closed (M7/053); a second document with the same ``ReferenceDocument`` +
``MaterialDocumentHeaderText`` only when duplicates are refused (ZPB/009, see ``rules.py``). The
whole document is posted or nothing is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from plantbridge_devtools.simulators.sap import inspection, messages, orders
from plantbridge_devtools.simulators.sap.odata import Entity, dec_str, numeric_key, to_decimal
from plantbridge_devtools.simulators.sap.runtime import Context, Runtime
from plantbridge_devtools.simulators.sap.state import MATDOC, MATDOC_ITEM, make_key

ORDER_MOVEMENTS = {"261", "262", "101", "102", "531", "532"}
SUPPORTED = ORDER_MOVEMENTS | {"551", "552"}
RECEIPTS = {"101", "262", "531", "552"}  # debit postings (stock increases)
REVERSAL_OF = {
    "261": "262",
    "262": "261",
    "101": "102",
    "102": "101",
    "531": "532",
    "532": "531",
    "551": "552",
    "552": "551",
}
GOODS_MOVEMENT_CODES = {"01", "02", "03", "04", "05", "06", "07"}


@dataclass
class Posted:
    header: Entity
    items: list[Entity]


def _component_for(rt: Runtime, order_no: str, item: Entity) -> Entity | None:
    comps = orders.components(rt.store, order_no)
    if item.get("Reservation") and item.get("ReservationItem"):
        for comp in comps:
            if numeric_key(comp["Reservation"]) == numeric_key(item["Reservation"]) and numeric_key(
                comp["ReservationItem"]
            ) == numeric_key(item["ReservationItem"]):
                return comp
        raise messages.movement_invalid(
            f"Reservation {item['Reservation']} item {item['ReservationItem']} does not belong to order {order_no}"
        )
    candidates = [c for c in comps if c["Material"] == item.get("Material")]
    open_ones = [c for c in candidates if to_decimal(c["WithdrawnQuantity"]) < to_decimal(c["RequiredQuantity"])]
    if open_ones:
        return open_ones[0]
    return candidates[0] if candidates else None


def _apply_to_order(
    rt: Runtime, ctx: Context, item: Entity, posting_date: date, lots: list[tuple[Entity, Entity]]
) -> None:
    movement = item["GoodsMovementType"]
    order_no = str(item.get("ManufacturingOrder") or "")
    if movement in ORDER_MOVEMENTS and not order_no:
        raise messages.movement_invalid(f"Movement type {movement} needs a manufacturing order")
    if not order_no:
        return
    order = orders.load(rt.store, order_no)
    item["ManufacturingOrder"] = order["ManufacturingOrder"]
    orders.check_lock(rt, order["ManufacturingOrder"])
    orders.check_open_for_goods_movement(order)
    quantity = to_decimal(item["QuantityInEntryUnit"])
    if not item.get("Plant"):
        item["Plant"] = order["ProductionPlant"]
    if movement in ("261", "262"):
        comp = _component_for(rt, order["ManufacturingOrder"], item)
        if comp is None:
            if movement == "262":
                raise messages.reversal_exceeds(
                    f"Material {item.get('Material')} was not issued to order {order['ManufacturingOrder']}"
                )
            return  # unplanned consumption: posted without a reservation
        withdrawn = to_decimal(comp["WithdrawnQuantity"])
        withdrawn = withdrawn + quantity if movement == "261" else withdrawn - quantity
        if withdrawn < 0:
            raise messages.reversal_exceeds(
                f"Reversal quantity {dec_str(quantity)} exceeds the quantity issued for reservation "
                f"{comp['Reservation']} item {comp['ReservationItem']}"
            )
        comp["WithdrawnQuantity"] = dec_str(withdrawn)
        finally_issued = bool(item.get("ReservationIsFinallyIssued")) and movement == "261"
        comp["ReservationIsFinallyIssued"] = finally_issued or withdrawn >= to_decimal(comp["RequiredQuantity"])
        item["Reservation"], item["ReservationItem"] = comp["Reservation"], comp["ReservationItem"]
        item["StorageLocation"] = item.get("StorageLocation") or comp["StorageLocation"]
        orders.save_component(rt.store, comp)
    elif movement in ("101", "102"):
        if item.get("Material") and item["Material"] != order["Material"]:
            raise messages.movement_invalid(
                f"Material {item['Material']} is not the material {order['Material']} "
                f"of order {order['ManufacturingOrder']}"
            )
        item["Material"] = order["Material"]
        header_item = orders.item(rt.store, order["ManufacturingOrder"])
        received = to_decimal(header_item["MfgOrderItemGoodsReceiptQty"])
        received = received + quantity if movement == "101" else received - quantity
        if received < 0:
            raise messages.reversal_exceeds(
                f"Reversal quantity {dec_str(quantity)} exceeds the goods receipt "
                f"of order {order['ManufacturingOrder']}"
            )
        planned = to_decimal(header_item["MfgOrderItemPlannedTotalQty"])
        header_item["MfgOrderItemGoodsReceiptQty"] = dec_str(received)
        header_item["IsCompletelyDelivered"] = (
            received >= planned or (movement == "101" and bool(item.get("IsCompletelyDelivered")))
        ) and received > 0
        header_item["MfgOrderItemActualDeliveryDate"] = posting_date.isoformat() if received > 0 else None
        header_item["MfgOrderItemActualDeviationQty"] = dec_str(received - planned)
        item["ManufacturingOrderItem"] = item.get("ManufacturingOrderItem") or "1"
        item["StorageLocation"] = item.get("StorageLocation") or order["StorageLocation"]
        item["GoodsMovementRefDocType"] = item.get("GoodsMovementRefDocType") or "F"
        orders.save_item(rt.store, header_item)
        if movement == "101" and order.get("_inspection_origin") == "04":
            item["InventoryStockType"] = "02"
            lots.append((order, item))
    orders.refresh_status(rt.store, order, ctx)


def post(rt: Runtime, ctx: Context, header: Entity, items: list[Entity]) -> Posted:
    """Post a material document (header and items in canonical form) inside a transaction."""
    if not items:
        raise messages.movement_invalid("A material document needs at least one item")
    posting_date = date.fromisoformat(header.get("PostingDate") or ctx.today.isoformat())
    orders.posting_period_check(rt, posting_date)
    store = rt.store
    with store.transaction():
        if rt.refuses_duplicate_keys() and header.get("ReferenceDocument") and header.get("MaterialDocumentHeaderText"):
            pair = (header["ReferenceDocument"], header["MaterialDocumentHeaderText"])
            for existing in store.all(MATDOC):
                if (existing.get("ReferenceDocument"), existing.get("MaterialDocumentHeaderText")) == pair:
                    raise messages.duplicate_material_document(*pair, existing["MaterialDocument"])
        year = f"{posting_date.year:04d}"
        number = str(store.next_number(f"material_document:{year}", 4900000000))
        lots: list[tuple[Entity, Entity]] = []
        stored_items: list[Entity] = []
        for index, raw in enumerate(items, start=1):
            item = dict(raw)
            movement = str(item.get("GoodsMovementType") or "")
            if movement not in SUPPORTED:
                raise messages.movement_invalid(f"Movement type {movement or '(none)'} is not supported")
            quantity = to_decimal(item.get("QuantityInEntryUnit"))
            if quantity <= 0:
                raise messages.movement_invalid(f"Item {index}: enter a quantity greater than zero")
            if not item.get("EntryUnit"):
                raise messages.movement_invalid(f"Item {index}: enter the unit of entry")
            item.update(
                {
                    "MaterialDocumentYear": year,
                    "MaterialDocument": number,
                    "MaterialDocumentItem": str(index),
                    "GoodsMovementType": movement,
                    "MaterialBaseUnit": item["EntryUnit"],
                    "QuantityInBaseUnit": dec_str(quantity),
                    "QuantityInEntryUnit": dec_str(quantity),
                    "FiscalYear": year,
                    "FiscalYearPeriod": f"{year}{posting_date.month:03d}",
                    "DebitCreditCode": "S" if movement in RECEIPTS else "H",
                    "GoodsMovementIsCancelled": False,
                    "InventoryStockType": item.get("InventoryStockType") or "01",
                }
            )
            _apply_to_order(rt, ctx, item, posting_date, lots)
            if not item.get("Material"):
                raise messages.movement_invalid(f"Item {index}: enter a material")
            stored_items.append(item)
        doc: Entity = {
            **header,
            "MaterialDocumentYear": year,
            "MaterialDocument": number,
            "PostingDate": posting_date.isoformat(),
            "DocumentDate": header.get("DocumentDate") or posting_date.isoformat(),
            "CreationDate": ctx.today.isoformat(),
            "CreationTime": ctx.now.time().isoformat(),
            "CreatedByUser": ctx.user,
        }
        store.put(MATDOC, make_key(year, number), doc)
        for item in stored_items:
            store.put(
                MATDOC_ITEM, make_key(year, number, item["MaterialDocumentItem"]), item, parent=make_key(year, number)
            )
        for order, item in lots:
            inspection.create_lot(
                store,
                ctx,
                order,
                origin="04",
                quantity=to_decimal(item["QuantityInEntryUnit"]),
                material_document=(year, number, item["MaterialDocumentItem"]),
                batch=str(item.get("Batch") or ""),
            )
    return Posted(doc, stored_items)


def reversal_items(items: list[Entity]) -> list[Entity]:
    """Items that reverse ``items`` (261 -> 262, 101 -> 102, ...)."""
    keep = (
        "Material",
        "Plant",
        "StorageLocation",
        "Batch",
        "ManufacturingOrder",
        "ManufacturingOrderItem",
        "Reservation",
        "ReservationItem",
        "EntryUnit",
        "QuantityInEntryUnit",
        "GoodsMovementRefDocType",
    )
    out = []
    for item in items:
        reversed_item = {k: item[k] for k in keep if k in item}
        reversed_item["GoodsMovementType"] = REVERSAL_OF[item["GoodsMovementType"]]
        reversed_item["ReversedMaterialDocumentYear"] = item["MaterialDocumentYear"]
        reversed_item["ReversedMaterialDocument"] = item["MaterialDocument"]
        reversed_item["ReversedMaterialDocumentItem"] = item["MaterialDocumentItem"]
        out.append(reversed_item)
    return out


def quantity_share(required: Decimal, part: Decimal, whole: Decimal) -> Decimal:
    """Proportional backflush quantity, rounded to three decimals as SAP quantities are."""
    if whole <= 0:
        return Decimal(0)
    return (required * part / whole).quantize(Decimal("0.001"))
