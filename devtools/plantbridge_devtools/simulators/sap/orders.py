"""Production orders: reading, release, technical completion and status bookkeeping.

An order is stored as its ``A_ProductionOrder_2`` header plus operations, components (reservation
items) and one order item, each in the canonical form of its OData entity type. Each operation
gets a confirmation number (``ConfirmationGroup``) when it is created, as in SAP.
The header's ``LastChangeDateTime`` (``YYYYMMDDhhmmss``) is the ETag source; it strictly increases
on every change so that an outdated ``If-Match`` always fails.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from plantbridge_devtools.simulators.sap import events, inspection, messages
from plantbridge_devtools.simulators.sap.odata import Entity, numeric_key, to_decimal
from plantbridge_devtools.simulators.sap.runtime import Context, Runtime
from plantbridge_devtools.simulators.sap.state import COMPONENT, OPERATION, ORDER, ORDER_ITEM, Store, make_key

ISO_UNITS = {
    "ST": "PCE",
    "PC": "PCE",
    "KG": "KGM",
    "G": "GRM",
    "L": "LTR",
    "M": "MTR",
    "H": "HUR",
    "MIN": "MIN",
    "S": "SEC",
    "M2": "MTK",
    "M3": "MTQ",
    "TO": "TNE",
    "EA": "EA",
}

# System statuses shown in A_ProductionOrderStatus_2 (JEST/TJ02 codes).
STATUSES = {
    "CRTD": ("I0001", "Created"),
    "REL": ("I0002", "Released"),
    "PCNF": ("I0010", "Partially confirmed"),
    "CNF": ("I0009", "Confirmed"),
    "PDLV": ("I0074", "Partially delivered"),
    "DLV": ("I0012", "Delivered"),
    "TECO": ("I0045", "Technically completed"),
    "LKD": ("I0043", "Locked"),
    "DLFL": ("I0076", "Deletion flag"),
    "CLSD": ("I0046", "Closed"),
}


def iso_unit(unit: str) -> str:
    return ISO_UNITS.get(unit.upper(), unit.upper())


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%d%H%M%S")


def touch(entity: Entity, ctx: Context) -> None:
    """Advance ``LastChangeDateTime`` (the ETag source) strictly."""
    candidate = _stamp(ctx.now)
    previous = str(entity.get("LastChangeDateTime") or "")
    if previous and candidate <= previous:
        candidate = _stamp(datetime.strptime(previous, "%Y%m%d%H%M%S") + timedelta(seconds=1))
    entity["LastChangeDateTime"] = candidate


def date_time(moment: datetime) -> tuple[str, str]:
    return moment.date().isoformat(), moment.time().replace(microsecond=0).isoformat()


# --- reading ----------------------------------------------------------------------------------


def order_key(order: str) -> str:
    return make_key(order)


def load(store: Store, order: str) -> Entity:
    found = store.get(ORDER, order_key(order))
    if found is None:
        raise messages.order_not_found(numeric_key(order))
    return found


def operations(store: Store, order: str) -> list[Entity]:
    return store.children(OPERATION, order_key(order))


def components(store: Store, order: str) -> list[Entity]:
    return store.children(COMPONENT, order_key(order))


def item(store: Store, order: str) -> Entity:
    found = store.children(ORDER_ITEM, order_key(order))
    return found[0]


def find_operation(store: Store, order: str, operation: str, sequence: str = "0") -> Entity:
    for op in operations(store, order):
        if numeric_key(op["ManufacturingOrderOperation"]) == numeric_key(operation) and numeric_key(
            op["ManufacturingOrderSequence"]
        ) == numeric_key(sequence or "0"):
            return op
    raise messages.operation_not_found(numeric_key(order), operation)


def save_operation(store: Store, op: Entity) -> None:
    store.put(
        OPERATION,
        make_key(op["OrderInternalBillOfOperations"], op["OrderIntBillOfOperationsItem"]),
        op,
        parent=order_key(op["ManufacturingOrder"]),
    )


def save_component(store: Store, comp: Entity) -> None:
    store.put(
        COMPONENT,
        make_key(comp["Reservation"], comp["ReservationItem"]),
        comp,
        parent=order_key(comp["ManufacturingOrder"]),
    )


def save_item(store: Store, entity: Entity) -> None:
    store.put(
        ORDER_ITEM,
        make_key(entity["ManufacturingOrder"], entity["ManufacturingOrderItem"]),
        entity,
        parent=order_key(entity["ManufacturingOrder"]),
    )


def save(store: Store, order: Entity) -> None:
    store.put(ORDER, order_key(order["ManufacturingOrder"]), order)


def system_status(order: Entity) -> list[str]:
    """Active system statuses in SAP's display order."""
    active = ["TECO"] if order.get("OrderIsTechnicallyCompleted") else []
    active.append("REL" if order.get("OrderIsReleased") else "CRTD")
    if order.get("OrderIsLocked"):
        active.append("LKD")
    if order.get("OrderIsMarkedForDeletion"):
        active.append("DLFL")
    if order.get("OrderIsClosed"):
        active.append("CLSD")
    if order.get("OrderIsConfirmed"):
        active.append("CNF")
    elif order.get("OrderIsPartiallyConfirmed"):
        active.append("PCNF")
    if order.get("OrderIsDelivered"):
        active.append("DLV")
    elif order.get("OrderIsPartiallyDelivered"):
        active.append("PDLV")
    return active


def status_entities(order: Entity) -> list[Entity]:
    return [
        {
            "ManufacturingOrder": order["ManufacturingOrder"],
            "StatusCode": STATUSES[s][0],
            "IsUserStatus": False,
            "StatusShortName": s,
            "StatusName": STATUSES[s][1],
        }
        for s in system_status(order)
    ]


# --- checks used by postings ------------------------------------------------------------------


def check_lock(rt: Runtime, order: str) -> None:
    owner = rt.rules.lock_owner(order)
    if owner:
        raise messages.locked(owner)


def check_open_for_confirmation(order: Entity) -> None:
    number = order["ManufacturingOrder"]
    check_not_flagged(order)
    if order.get("OrderIsTechnicallyCompleted"):
        raise messages.status_active("TECO", number)
    if order.get("OrderIsClosed"):
        raise messages.status_active("CLSD", number)
    if not order.get("OrderIsReleased"):
        raise messages.status_active("CRTD", number)


def check_not_flagged(order: Entity) -> None:
    """DLFL and LKD block postings (ORDER-FACTS 5.6/5.7: expected BS/013 "System status & is active")."""
    number = order["ManufacturingOrder"]
    if order.get("OrderIsMarkedForDeletion"):
        raise messages.status_active("DLFL", number)
    if order.get("OrderIsLocked"):
        raise messages.status_active("LKD", number)


def check_open_for_goods_movement(order: Entity) -> None:
    number = order["ManufacturingOrder"]
    check_not_flagged(order)
    if order.get("OrderIsClosed"):
        raise messages.status_active("CLSD", number)
    if not order.get("OrderIsReleased"):
        raise messages.status_active("CRTD", number)


def refresh_status(store: Store, order: Entity, ctx: Context) -> None:
    """Derive the header's confirmation and delivery statuses from operations and item."""
    ops = operations(store, order["ManufacturingOrder"])
    confirmed_any = any(op.get("_confirmations", 0) > 0 for op in ops)
    all_final = bool(ops) and all(op.get("OperationIsConfirmed") for op in ops)
    order["OrderIsPartiallyConfirmed"] = "X" if confirmed_any and not all_final else ""
    order["OrderIsConfirmed"] = "X" if all_final else ""
    if ops:
        last = max(ops, key=lambda op: int(op["ManufacturingOrderOperation"] or 0))
        order["MfgOrderConfirmedYieldQty"] = last["OpTotalConfirmedYieldQty"]
    header_item = item(store, order["ManufacturingOrder"])
    received = to_decimal(header_item["MfgOrderItemGoodsReceiptQty"])
    delivered = bool(header_item.get("IsCompletelyDelivered"))
    order["OrderIsDelivered"] = "X" if delivered else ""
    order["OrderIsPartiallyDelivered"] = "X" if received > 0 and not delivered else ""
    touch(order, ctx)
    save(store, order)


# --- lifecycle --------------------------------------------------------------------------------


def release(rt: Runtime, ctx: Context, order_number: str) -> bool:
    """Release the order; returns False when it already was released."""
    store = rt.store
    with store.transaction():
        order = load(store, order_number)
        check_lock(rt, order["ManufacturingOrder"])
        number = order["ManufacturingOrder"]
        if order.get("OrderIsTechnicallyCompleted"):
            raise messages.status_active("TECO", number)
        if order.get("OrderIsReleased"):
            return False
        order["OrderIsReleased"] = "X"
        order["OrderIsCreated"] = ""
        order["MfgOrderActualReleaseDate"] = ctx.today.isoformat()
        touch(order, ctx)
        save(store, order)
        for op in operations(store, number):
            op["OperationIsReleased"] = "X"
            op["OperationIsCreated"] = ""
            touch(op, ctx)
            save_operation(store, op)
        if order.get("_inspection_origin") == "03":
            inspection.create_lot(store, ctx, order, origin="03", quantity=to_decimal(order["TotalQuantity"]))
        # S/4HANA has no Released event: a release is reported as Changed (ORDER-FACTS 2.4).
        ctx.events.append(events.PendingEvent(events.CHANGED, number, {"ManufacturingOrder": number}))
    return True


def complete_technically(rt: Runtime, ctx: Context, order_number: str) -> bool:
    """Set TECO; returns False when the order already was technically completed."""
    store = rt.store
    with store.transaction():
        order = load(store, order_number)
        check_lock(rt, order["ManufacturingOrder"])
        if order.get("OrderIsTechnicallyCompleted"):
            return False
        number = order["ManufacturingOrder"]
        order["OrderIsTechnicallyCompleted"] = "X"
        touch(order, ctx)
        save(store, order)
        for op in operations(store, number):
            op["OperationIsTechlyCompleted"] = "X"
            touch(op, ctx)
            save_operation(store, op)
        ctx.events.append(events.PendingEvent(events.CHANGED, number, {"ManufacturingOrder": number}))
    return True


def _period(year: int, month: int, shift: int) -> str:
    index = year * 12 + (month - 1) + shift
    return f"{index // 12:04d}/{index % 12 + 1:02d}"


def posting_period_check(rt: Runtime, posting_date: date) -> None:
    """M7/053 when the rule ``period_closed`` is on.

    The posting date's period counts as closed: the system's open periods (current and previous,
    as MMRV allows) are the two following it, and SAP's message names them.
    """
    if not rt.rules.current.period_closed:
        return
    y, m = posting_date.year, posting_date.month
    raise messages.period_closed(_period(y, m, 2), _period(y, m, 1), rt.settings.company_code)
