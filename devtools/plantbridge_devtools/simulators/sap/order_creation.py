"""Creating production orders (admin API): header, order item, operations and components.

Numbers come from the simulator's number ranges: orders from 1000000 (or as given), the routing
(``OrderInternalBillOfOperations``), the reservation of the components, and one confirmation
number (``ConfirmationGroup``) per operation, drawn when the operation is created, as in SAP.
Operations are scheduled back to back across the order's planned window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from decimal import Decimal

from plantbridge_devtools.simulators.sap import events, messages
from plantbridge_devtools.simulators.sap.odata import Entity, dec_str, numeric_key
from plantbridge_devtools.simulators.sap.orders import (
    date_time,
    iso_unit,
    order_key,
    save,
    save_component,
    save_item,
    save_operation,
    touch,
)
from plantbridge_devtools.simulators.sap.runtime import Context, Runtime
from plantbridge_devtools.simulators.sap.state import ORDER, Store


@dataclass
class OperationSpec:
    operation: str
    work_center: str
    control_key: str = "PP01"
    description: str = ""
    quantity: Decimal | None = None
    standard_values: list[tuple[str, Decimal]] = field(default_factory=list)


@dataclass
class ComponentSpec:
    item: str
    material: str
    quantity: Decimal
    unit: str
    storage_location: str = ""
    batch: str = ""
    backflush: bool = False
    operation: str | None = None
    description: str = ""


@dataclass
class OrderSpec:
    plant: str
    material: str
    quantity: Decimal
    unit: str
    order: str | None = None
    order_type: str = "PP01"
    storage_location: str = ""
    batch: str = ""
    start: datetime | None = None
    end: datetime | None = None
    mrp_controller: str = "001"
    production_supervisor: str = ""
    production_version: str = ""
    tolerance_pct: Decimal = Decimal(0)
    inspection_lot_origin: str | None = None
    operations: list[OperationSpec] = field(default_factory=list)
    components: list[ComponentSpec] = field(default_factory=list)


@dataclass(frozen=True)
class _Frame:
    """What the parts of one new order share."""

    number: str
    routing: str
    reservation: str
    spec: OrderSpec
    start: datetime
    end: datetime

    @property
    def unit(self) -> str:
        return self.spec.unit.upper()


def _work_center_id(store: Store, work_center: str) -> str:
    """The work center's internal ID (CRHD-OBJID), drawn once per work center name."""
    known = store.get_setting(f"work_center:{work_center}")
    if known is None:
        known = store.next_number("work_center", 10000000)
        store.set_setting(f"work_center:{work_center}", known)
    return str(known)


def _number(store: Store, spec: OrderSpec) -> str:
    if not spec.order:
        return str(store.next_number("order", 1000000))
    number = numeric_key(spec.order)
    if not number.isdigit():
        raise messages.bad_request(f"Order number {spec.order} must be numeric")
    if store.get(ORDER, order_key(number)) is not None:
        raise messages.bad_request(f"Order {number} already exists")
    store.bump_number("order", int(number))
    return number


def _header(frame: _Frame, rt: Runtime, ctx: Context) -> Entity:
    spec, unit = frame.spec, frame.unit
    start_date, start_time = date_time(frame.start)
    end_date, end_time = date_time(frame.end)
    created_date, created_time = date_time(ctx.now)
    header: Entity = {
        "ManufacturingOrder": frame.number,
        "ManufacturingOrderCategory": "10",
        "ManufacturingOrderType": spec.order_type,
        "OrderIsCreated": "X",
        "OrderIsReleased": "",
        "OrderIsPreCosted": "X",
        "OrderIsTechnicallyCompleted": "",
        "OrderIsLocked": "",
        "OrderIsMarkedForDeletion": "",
        "OrderIsDeleted": "",
        "OrderIsClosed": "",
        "MfgOrderCreationDate": created_date,
        "MfgOrderCreationTime": created_time,
        "Material": spec.material,
        "StorageLocation": spec.storage_location,
        "OrderInternalBillOfOperations": frame.routing,
        "ProductionPlant": spec.plant,
        "Plant": spec.plant,
        "MRPArea": spec.plant,
        "MRPController": spec.mrp_controller,
        "ProductionSupervisor": spec.production_supervisor,
        "ProductionVersion": spec.production_version,
        "CompanyCode": rt.settings.company_code,
        "MfgOrderPlannedStartDate": start_date,
        "MfgOrderPlannedStartTime": start_time,
        "MfgOrderPlannedEndDate": end_date,
        "MfgOrderPlannedEndTime": end_time,
        "MfgOrderScheduledStartDate": start_date,
        "MfgOrderScheduledStartTime": start_time,
        "MfgOrderScheduledEndDate": end_date,
        "MfgOrderScheduledEndTime": end_time,
        "ProductionUnit": unit,
        "ProductionUnitISOCode": iso_unit(unit),
        "ProductionUnitSAPCode": unit,
        "TotalQuantity": dec_str(spec.quantity),
        "MfgOrderPlannedScrapQty": "0",
        "MfgOrderConfirmedYieldQty": "0",
        "_tolerance_pct": dec_str(spec.tolerance_pct),
        "_inspection_origin": spec.inspection_lot_origin or "",
        "_reservation": frame.reservation,
        "_batch": spec.batch,
    }
    touch(header, ctx)
    return header


def _item(frame: _Frame) -> Entity:
    spec, unit = frame.spec, frame.unit
    return {
        "ManufacturingOrder": frame.number,
        "ManufacturingOrderItem": "1",
        "ManufacturingOrderCategory": "10",
        "ManufacturingOrderType": spec.order_type,
        "IsCompletelyDelivered": False,
        "Material": spec.material,
        "ProductionPlant": spec.plant,
        "Plant": spec.plant,
        "StorageLocation": spec.storage_location,
        "Batch": spec.batch,
        "MfgOrderItemPlndDeliveryDate": frame.end.date().isoformat(),
        "MfgOrderItemActualDeliveryDate": None,
        "ProductionUnit": unit,
        "ProductionUnitISOCode": iso_unit(unit),
        "ProductionUnitSAPCode": unit,
        "MfgOrderItemPlannedTotalQty": dec_str(spec.quantity),
        "MfgOrderItemPlannedScrapQty": "0",
        "MfgOrderItemGoodsReceiptQty": "0",
        "MfgOrderItemActualDeviationQty": "0",
    }


def _operation(
    frame: _Frame, store: Store, ctx: Context, op_spec: OperationSpec, index: int, start: datetime, end: datetime
) -> Entity:
    spec, unit = frame.spec, frame.unit
    s_date, s_time = date_time(start)
    e_date, e_time = date_time(end)
    op: Entity = {
        "OrderInternalBillOfOperations": frame.routing,
        "OrderIntBillOfOperationsItem": str(index + 1),
        "ManufacturingOrder": frame.number,
        "ManufacturingOrderSequence": "0",
        "ManufacturingOrderOperation": op_spec.operation.zfill(4),
        "ManufacturingOrderCategory": "10",
        "ManufacturingOrderType": spec.order_type,
        "MfgOrderOperationText": op_spec.description[:40],
        "OperationIsCreated": "X",
        "ProductionPlant": spec.plant,
        "WorkCenterInternalID": _work_center_id(store, op_spec.work_center),
        "WorkCenterTypeCode": "A",
        "WorkCenter": op_spec.work_center,
        "OperationControlProfile": op_spec.control_key,
        "OpErlstSchedldExecStrtDte": s_date,
        "OpErlstSchedldExecStrtTme": s_time,
        "OpErlstSchedldExecEndDte": e_date,
        "OpErlstSchedldExecEndTme": e_time,
        "OperationUnit": unit,
        "OperationUnitISOCode": iso_unit(unit),
        "OperationUnitSAPCode": unit,
        "OpPlannedTotalQuantity": dec_str(op_spec.quantity if op_spec.quantity is not None else spec.quantity),
        "OpTotalConfirmedYieldQty": "0",
        "_conf_group": str(store.next_number("confirmation", 1000)),
        "_conf_count": 0,
        "_confirmations": 0,
        "_scrap": "0",
        "_rework": "0",
    }
    for slot, (std_unit, std_qty) in enumerate(op_spec.standard_values[:6], start=1):
        op[f"WorkCenterStandardWorkQtyUnit{slot}"] = std_unit.upper()
        op[f"WorkCenterStandardWorkQty{slot}"] = dec_str(std_qty)
    touch(op, ctx)
    return op


def _component(frame: _Frame, comp_spec: ComponentSpec, index: int, operation: str) -> Entity:
    spec, unit = frame.spec, comp_spec.unit.upper()
    start_date, start_time = date_time(frame.start)
    return {
        "Reservation": frame.reservation,
        "ReservationItem": str(index + 1),
        "Material": comp_spec.material,
        "Plant": spec.plant,
        "ManufacturingOrderCategory": "10",
        "ManufacturingOrderType": spec.order_type,
        "ManufacturingOrder": frame.number,
        "ManufacturingOrderSequence": "0",
        "ManufacturingOrderOperation": operation,
        "ProductionPlant": spec.plant,
        "OrderInternalBillOfOperations": frame.routing,
        "MatlCompRequirementDate": start_date,
        "MatlCompRequirementTime": start_time,
        "ReservationIsFinallyIssued": False,
        "MatlCompIsMarkedForDeletion": False,
        "IsBulkMaterialComponent": False,
        "MatlCompIsMarkedForBackflush": comp_spec.backflush,
        "BillOfMaterialItemNumber": comp_spec.item.zfill(4),
        "BOMItemDescription": comp_spec.description[:40],
        "StorageLocation": comp_spec.storage_location,
        "Batch": comp_spec.batch,
        "GoodsMovementType": "261",
        "BaseUnit": unit,
        "BaseUnitISOCode": iso_unit(unit),
        "BaseUnitSAPCode": unit,
        "RequiredQuantity": dec_str(comp_spec.quantity),
        "WithdrawnQuantity": "0",
        "ConfirmedAvailableQuantity": dec_str(comp_spec.quantity),
        "EntryUnit": unit,
        "EntryUnitISOCode": iso_unit(unit),
        "EntryUnitSAPCode": unit,
        "GoodsMovementEntryQty": dec_str(comp_spec.quantity),
    }


def create(rt: Runtime, ctx: Context, spec: OrderSpec) -> Entity:
    """Create an order in status CRTD and queue its Created event."""
    store = rt.store
    with store.transaction():
        start = spec.start or datetime.combine(ctx.today, time(6, 0))
        frame = _Frame(
            number=_number(store, spec),
            routing=str(store.next_number("routing", 1000)),
            reservation=str(store.next_number("reservation", 1000)),
            spec=spec,
            start=start,
            end=spec.end or start + timedelta(days=1),
        )
        header = _header(frame, rt, ctx)
        save(store, header)
        save_item(store, _item(frame))
        op_specs = spec.operations or [OperationSpec("0010", "WC-01", description=spec.material)]
        span = (frame.end - frame.start) / len(op_specs)
        for index, op_spec in enumerate(op_specs):
            op_start = frame.start + span * index
            save_operation(store, _operation(frame, store, ctx, op_spec, index, op_start, op_start + span))
        op_numbers = [o.operation.zfill(4) for o in op_specs]
        for index, comp_spec in enumerate(spec.components):
            operation = (comp_spec.operation or op_numbers[0]).zfill(4)
            if operation not in op_numbers:
                raise messages.operation_not_found(frame.number, operation)
            save_component(store, _component(frame, comp_spec, index, operation))
        ctx.events.append(events.PendingEvent(events.CREATED, frame.number, {"ManufacturingOrder": frame.number}))
    return header
