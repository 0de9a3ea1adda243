"""Changes to an order after creation, as CO02 makes them, each reported as S/4HANA does: one
``ProductionOrder.Changed.v1`` event (there is no other event type; ORDER-FACTS 2.1-2.4).

- Header: total quantity (the item's planned quantity follows), planned/scheduled start and end.
- Operations: add (a new confirmation number), change (work center, text, planned quantity),
  remove (``OperationIsDeleted``: SAP keeps the row with status DLT, ORDER-FACTS 3.5).
- Components: add (a new reservation item), change (quantity, storage location, batch, backflush),
  remove (``MatlCompIsMarkedForDeletion``: SAP keeps the row, ORDER-FACTS 1.14).
- Status: TECO, lock/unlock (LKD), deletion flag set/reset (DLFL), release revoked (only while
  nothing is confirmed: SAP allows no undoing of a release once work was reported).

Every change advances ``LastChangeDateTime`` (the header's ETag, ORDER-FACTS 1.4).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Literal

from plantbridge_devtools.simulators.sap import events, messages, orders
from plantbridge_devtools.simulators.sap.odata import Entity, dec_str, numeric_key
from plantbridge_devtools.simulators.sap.runtime import Context, Runtime

StatusAction = Literal["teco", "lock", "unlock", "deletion_flag", "reset_deletion_flag", "revoke_release"]


@dataclass(frozen=True)
class OperationChange:
    action: Literal["add", "change", "remove"]
    operation: str
    work_center: str | None = None
    description: str | None = None
    quantity: Decimal | None = None
    control_key: str | None = None


@dataclass(frozen=True)
class ComponentChange:
    action: Literal["add", "change", "remove"]
    item: str
    material: str | None = None
    quantity: Decimal | None = None
    unit: str | None = None
    storage_location: str | None = None
    batch: str | None = None
    backflush: bool | None = None
    operation: str | None = None


@dataclass(frozen=True)
class OrderChange:
    quantity: Decimal | None = None
    start: datetime | None = None
    end: datetime | None = None
    operations: list[OperationChange] = field(default_factory=list)
    components: list[ComponentChange] = field(default_factory=list)


def _changeable(rt: Runtime, order: Entity) -> None:
    number = order["ManufacturingOrder"]
    orders.check_lock(rt, number)
    for flag, status in (("OrderIsTechnicallyCompleted", "TECO"), ("OrderIsClosed", "CLSD"),
                         ("OrderIsMarkedForDeletion", "DLFL"), ("OrderIsLocked", "LKD")):
        if order.get(flag):  # TECO, CLSD, DLFL: "the order can no longer be changed" (ORDER-FACTS 5.1-5.5)
            raise messages.status_active(status, number)


def _find_op(ops: list[Entity], operation: str) -> Entity | None:
    for op in ops:
        same = numeric_key(op["ManufacturingOrderOperation"]) == numeric_key(operation)
        if same and not op.get("OperationIsDeleted"):
            return op
    return None


def _apply_operation(rt: Runtime, ctx: Context, order: Entity, change: OperationChange) -> None:
    store, number = rt.store, order["ManufacturingOrder"]
    ops = orders.operations(store, number)
    op = _find_op(ops, change.operation)
    if change.action == "add":
        if op is not None:
            raise messages.bad_request(f"Operation {change.operation} already exists in order {number}")
        if not ops or not change.work_center:
            raise messages.bad_request("A new operation needs a work center")
        template = ops[0]
        new: Entity = {k: v for k, v in template.items() if not k.startswith("_")}
        new.update({
            "OrderIntBillOfOperationsItem": str(max(int(o["OrderIntBillOfOperationsItem"]) for o in ops) + 1),
            "ManufacturingOrderOperation": change.operation.zfill(4),
            "MfgOrderOperationText": (change.description or "")[:40],
            "WorkCenter": change.work_center,
            "OperationControlProfile": change.control_key or "PP01",
            "OpPlannedTotalQuantity": dec_str(change.quantity if change.quantity is not None
                                              else Decimal(str(order["TotalQuantity"]))),
            "OpTotalConfirmedYieldQty": "0",
            "OperationIsConfirmed": "", "OperationIsPartiallyConfirmed": "", "OperationIsDeleted": "",
            "_conf_group": str(store.next_number("confirmation", 1000)),
            "_conf_count": 0, "_confirmations": 0, "_scrap": "0", "_rework": "0",
        })
        orders.touch(new, ctx)
        orders.save_operation(store, new)
        return
    if op is None:
        raise messages.operation_not_found(numeric_key(number), change.operation)
    if change.action == "remove":
        op["OperationIsDeleted"] = "X"
    else:
        if change.work_center:
            op["WorkCenter"] = change.work_center
        if change.description is not None:
            op["MfgOrderOperationText"] = change.description[:40]
        if change.quantity is not None:
            op["OpPlannedTotalQuantity"] = dec_str(change.quantity)
        if change.control_key:
            op["OperationControlProfile"] = change.control_key
    orders.touch(op, ctx)
    orders.save_operation(store, op)


def _apply_component(rt: Runtime, ctx: Context, order: Entity, change: ComponentChange) -> None:
    store, number = rt.store, order["ManufacturingOrder"]
    comps = orders.components(store, number)
    item = change.item.zfill(4)
    live = [c for c in comps if c.get("BillOfMaterialItemNumber") == item and not c.get("MatlCompIsMarkedForDeletion")]
    if change.action == "add":
        if live:
            raise messages.bad_request(f"Component item {item} already exists in order {number}")
        if not change.material or change.quantity is None or not change.unit:
            raise messages.bad_request("A new component needs material, quantity and unit")
        ops = [o for o in orders.operations(store, number) if not o.get("OperationIsDeleted")]
        operation = (change.operation or min(o["ManufacturingOrderOperation"] for o in ops)).zfill(4)
        if _find_op(ops, operation) is None:
            raise messages.operation_not_found(numeric_key(number), operation)
        unit = change.unit.upper()
        qty = dec_str(change.quantity)
        comp: Entity = {
            "Reservation": order["_reservation"],
            "ReservationItem": str(max((int(c["ReservationItem"]) for c in comps), default=0) + 1),
            "Material": change.material, "Plant": order["Plant"], "ManufacturingOrderCategory": "10",
            "ManufacturingOrderType": order["ManufacturingOrderType"], "ManufacturingOrder": number,
            "ManufacturingOrderSequence": "0", "ManufacturingOrderOperation": operation,
            "ProductionPlant": order["ProductionPlant"],
            "OrderInternalBillOfOperations": order["OrderInternalBillOfOperations"],
            "MatlCompRequirementDate": order["MfgOrderPlannedStartDate"],
            "MatlCompRequirementTime": order["MfgOrderPlannedStartTime"],
            "ReservationIsFinallyIssued": False, "MatlCompIsMarkedForDeletion": False, "IsBulkMaterialComponent": False,
            "MatlCompIsMarkedForBackflush": bool(change.backflush), "BillOfMaterialItemNumber": item,
            "BOMItemDescription": "", "StorageLocation": change.storage_location or "", "Batch": change.batch or "",
            "GoodsMovementType": "261", "BaseUnit": unit, "BaseUnitISOCode": orders.iso_unit(unit),
            "BaseUnitSAPCode": unit, "RequiredQuantity": qty, "WithdrawnQuantity": "0",
            "ConfirmedAvailableQuantity": qty, "EntryUnit": unit, "EntryUnitISOCode": orders.iso_unit(unit),
            "EntryUnitSAPCode": unit, "GoodsMovementEntryQty": qty,
        }
        orders.save_component(store, comp)
        return
    if not live:
        raise messages.bad_request(f"Order {number} has no component item {item}")
    comp = live[0]
    if change.action == "remove":
        comp["MatlCompIsMarkedForDeletion"] = True
    else:
        if change.quantity is not None:
            comp["RequiredQuantity"] = comp["GoodsMovementEntryQty"] = dec_str(change.quantity)
        if change.storage_location is not None:
            comp["StorageLocation"] = change.storage_location
        if change.batch is not None:
            comp["Batch"] = change.batch
        if change.backflush is not None:
            comp["MatlCompIsMarkedForBackflush"] = change.backflush
    orders.save_component(store, comp)


def change(rt: Runtime, ctx: Context, number: str, spec: OrderChange) -> None:
    """Apply one CO02 change (several fields at once) and queue one Changed event."""
    store = rt.store
    with store.transaction():
        order = orders.load(store, number)
        _changeable(rt, order)
        key = order["ManufacturingOrder"]
        if spec.quantity is not None:
            if spec.quantity <= 0:
                raise messages.bad_request("The order quantity must be positive")
            old = Decimal(str(order["TotalQuantity"]))
            order["TotalQuantity"] = dec_str(spec.quantity)
            item = orders.item(store, key)
            item["MfgOrderItemPlannedTotalQty"] = dec_str(spec.quantity)
            orders.save_item(store, item)
            for op in orders.operations(store, key):  # operation quantities follow the header (scheduling)
                if Decimal(str(op["OpPlannedTotalQuantity"])) == old:
                    op["OpPlannedTotalQuantity"] = dec_str(spec.quantity)
                    orders.touch(op, ctx)
                    orders.save_operation(store, op)
        for moment, prefix in ((spec.start, "Start"), (spec.end, "End")):
            if moment is not None:
                day, clock = orders.date_time(moment)
                for kind in ("Planned", "Scheduled"):
                    order[f"MfgOrder{kind}{prefix}Date"] = day
                    order[f"MfgOrder{kind}{prefix}Time"] = clock
        if order["MfgOrderPlannedEndDate"] < order["MfgOrderPlannedStartDate"]:
            raise messages.bad_request(f"Order {key} would end before it starts")
        for op_change in spec.operations:
            _apply_operation(rt, ctx, order, op_change)
        for comp_change in spec.components:
            _apply_component(rt, ctx, order, comp_change)
        orders.touch(order, ctx)
        orders.save(store, order)
        ctx.events.append(events.PendingEvent(events.CHANGED, key, {"ManufacturingOrder": key}))


def set_status(rt: Runtime, ctx: Context, number: str, action: StatusAction) -> bool:
    """Set or reset a status; False when it was already so (no event then)."""
    if action == "teco":
        return orders.complete_technically(rt, ctx, number)
    store = rt.store
    with store.transaction():
        order = orders.load(store, number)
        key = order["ManufacturingOrder"]
        flag, value = {
            "lock": ("OrderIsLocked", "X"), "unlock": ("OrderIsLocked", ""),
            "deletion_flag": ("OrderIsMarkedForDeletion", "X"), "reset_deletion_flag": ("OrderIsMarkedForDeletion", ""),
            "revoke_release": ("OrderIsReleased", ""),
        }[action]
        if (order.get(flag) or "") == value:
            return False
        if action == "revoke_release":
            if any(op.get("_confirmations", 0) for op in orders.operations(store, key)):
                raise messages.status_active("PCNF", key)  # work was reported: the release stays
            order["OrderIsCreated"] = "X"
        order[flag] = value
        orders.touch(order, ctx)
        orders.save(store, order)
        ctx.events.append(events.PendingEvent(events.CHANGED, key, {"ManufacturingOrder": key}))
    return True
