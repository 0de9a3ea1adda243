"""API_PROD_ORDER_CONFIRMATION_2_SRV: time-ticket confirmations of production order operations.

``POST ProdnOrdConf2`` creates a confirmation, with its goods movements as deep insert in
``to_ProdnOrdConfMatlDocItm``; without them (and without ``APIConfHasNoGoodsMovements``) the
operation's backflush components are issued in proportion to yield + scrap, as SAP's backflush
does. Rules, in SAP's order of checks: the order exists and has the operation, is not locked
(MC/601), is released and not TECO (BS/013), the operation is not finally confirmed (RU/014),
the external key ``ExternalSystemConfirmation`` is unused (ZPB/001, only when duplicates are refused:
see ``rules.py``; by default a second posting with the same key is taken, as a real system may),
yield + scrap stay within the planned quantity plus the order's overdelivery tolerance (ZPB/002),
the posting period is open (M7/053). ``CancelProdnOrdConf`` reverses a confirmation and its goods movements.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from plantbridge_devtools.simulators.sap import messages, orders, postings
from plantbridge_devtools.simulators.sap.edm import FunctionImport
from plantbridge_devtools.simulators.sap.odata import Entity, dec_str, nav_items, numeric_key, parse_payload, to_decimal
from plantbridge_devtools.simulators.sap.runtime import Context, Runtime
from plantbridge_devtools.simulators.sap.schemas import confirmation as schema
from plantbridge_devtools.simulators.sap.services.base import Created, FunctionResult, ServiceHandler
from plantbridge_devtools.simulators.sap.state import CONF_MOVEMENT, CONFIRMATION, MATDOC_ITEM, OPERATION, make_key

# Properties of ProdnOrdConfMatlDocItm that map 1:1 onto A_MaterialDocumentItem.
_ITEM_FIELDS = (
    "Material",
    "Plant",
    "Reservation",
    "ReservationItem",
    "StorageLocation",
    "Batch",
    "InventoryValuationType",
    "GoodsMovementType",
    "GoodsMovementRefDocType",
    "InventorySpecialStockType",
    "SalesOrder",
    "SalesOrderItem",
    "Supplier",
    "Customer",
    "ReservationIsFinallyIssued",
    "IsCompletelyDelivered",
    "ShelfLifeExpirationDate",
    "ManufactureDate",
    "MaterialDocumentItemText",
    "EntryUnit",
    "QuantityInEntryUnit",
)


def _movement_key(m: Entity) -> str:
    return make_key(
        m["ConfirmationGroup"],
        m["ConfirmationCount"],
        m["MaterialDocument"],
        m["MaterialDocumentItem"],
        m["MaterialDocumentYear"],
    )


class ConfirmationService(ServiceHandler):
    schema = schema.SCHEMA
    kinds = {"ProdnOrdConf2": CONFIRMATION, "ProdnOrdConfMatlDocItm": CONF_MOVEMENT}

    def __init__(self, rt: Runtime) -> None:
        super().__init__(rt)
        self.navigators = {("ProdnOrdConf2", "to_ProdnOrdConfMatlDocItm"): self._movements_of}

    def _movements_of(self, conf: Entity) -> list[Entity]:
        parent = make_key(conf["ConfirmationGroup"], conf["ConfirmationCount"])
        return [self.complete("ProdnOrdConfMatlDocItm", m) for m in self.rt.store.children(CONF_MOVEMENT, parent)]

    def _find_external(self, external: str) -> Entity | None:
        key = self.rt.store.get_setting(f"external_confirmation:{external}")
        return None if key is None else self.rt.store.get(CONFIRMATION, key)

    def _store(self, conf: Entity) -> None:
        key = make_key(conf["ConfirmationGroup"], conf["ConfirmationCount"])
        self.rt.store.put(CONFIRMATION, key, conf, parent=make_key(conf["OrderID"]))
        if conf.get("ExternalSystemConfirmation"):
            self.rt.store.set_setting(f"external_confirmation:{conf['ExternalSystemConfirmation']}", key)

    # --- create ------------------------------------------------------------------------------

    def create(self, set_name: str, body: Any, ctx: Context) -> Created:
        if set_name != "ProdnOrdConf2":
            return super().create(set_name, body, ctx)
        values, navs = parse_payload(schema.CONFIRMATION, body)
        movements = (
            [
                parse_payload(schema.GOODS_MOVEMENT, raw, allow_nav=False)[0]
                for raw in nav_items(navs["to_ProdnOrdConfMatlDocItm"], "to_ProdnOrdConfMatlDocItm")
            ]
            if "to_ProdnOrdConfMatlDocItm" in navs
            else None
        )
        conf = self._confirm(values, movements, ctx)
        return Created(set_name, conf, expand=("to_ProdnOrdConfMatlDocItm",))

    def _operation_for(self, values: Entity) -> tuple[Entity, Entity]:
        store = self.rt.store
        group = values.get("ConfirmationGroup")
        if group:
            for conf_op in store.all(OPERATION):
                if numeric_key(str(conf_op.get("_conf_group"))) == numeric_key(str(group)):
                    return orders.load(store, conf_op["ManufacturingOrder"]), conf_op
            raise messages.operation_not_found(str(values.get("OrderID") or ""), f"confirmation {group}")
        order_id = values.get("OrderID")
        if not order_id:
            raise messages.invalid_value("OrderID", "enter the order (OrderID) or the ConfirmationGroup")
        order = orders.load(store, order_id)
        operation = values.get("OrderOperation")
        if not operation:
            raise messages.invalid_value("OrderOperation", "enter the operation to confirm")
        return order, orders.find_operation(
            store, order["ManufacturingOrder"], operation, values.get("Sequence") or "0"
        )

    def _confirm(self, values: Entity, movements: list[Entity] | None, ctx: Context) -> Entity:
        rt, store = self.rt, self.rt.store
        with store.transaction():
            order, op = self._operation_for(values)
            number = order["ManufacturingOrder"]
            orders.check_lock(rt, number)
            orders.check_open_for_confirmation(order)
            if op.get("OperationIsConfirmed"):
                raise messages.operation_finally_confirmed(
                    op["ManufacturingOrderOperation"], op["ManufacturingOrderSequence"]
                )
            external = values.get("ExternalSystemConfirmation")
            if external and self.rt.refuses_duplicate_keys():
                existing = self._find_external(external)
                if existing is not None:
                    raise messages.duplicate_external_confirmation(
                        external, existing["ConfirmationGroup"], existing["ConfirmationCount"]
                    )
            unit = op["OperationUnit"]
            if values.get("ConfirmationUnit") and values["ConfirmationUnit"].upper() != unit:
                raise messages.invalid_value(
                    "ConfirmationUnit", f"unit {values['ConfirmationUnit']} differs from the operation unit {unit}"
                )
            yield_qty = to_decimal(values.get("ConfirmationYieldQuantity"))
            scrap = to_decimal(values.get("ConfirmationScrapQuantity"))
            rework = to_decimal(values.get("ConfirmationReworkQuantity"))
            if min(yield_qty, scrap, rework) < 0:
                raise messages.invalid_value("ConfirmationYieldQuantity", "quantities must not be negative")
            planned = to_decimal(op["OpPlannedTotalQuantity"])
            tolerance = to_decimal(order.get("_tolerance_pct"))
            total = to_decimal(op["OpTotalConfirmedYieldQty"]) + to_decimal(op.get("_scrap")) + yield_qty + scrap
            if total > planned * (1 + tolerance / 100):
                raise messages.over_confirmation(
                    op["ManufacturingOrderOperation"], dec_str(total), dec_str(planned), dec_str(tolerance), unit
                )
            posting_date = date.fromisoformat(values.get("PostingDate") or ctx.today.isoformat())
            orders.posting_period_check(rt, posting_date)
            final_type = values.get("FinalConfirmationType") or ""
            is_final = (
                bool(values.get("IsFinalConfirmation")) or final_type == "X" or (final_type == "1" and total >= planned)
            )
            items = self._goods_movements(order, op, movements, values, yield_qty + scrap)
            posted = postings.post(rt, ctx, {"PostingDate": posting_date.isoformat()}, items) if items else None
            order = orders.load(store, number)  # postings may have changed the header
            op["_conf_count"] = int(op.get("_conf_count", 0)) + 1
            conf: Entity = {
                **values,
                "ConfirmationGroup": op["_conf_group"],
                "ConfirmationCount": str(op["_conf_count"]),
                "OrderID": number,
                "Sequence": op["ManufacturingOrderSequence"],
                "OrderOperation": op["ManufacturingOrderOperation"],
                "OrderType": order["ManufacturingOrderType"],
                "OrderOperationInternalID": op["OrderIntBillOfOperationsItem"],
                "Material": order["Material"],
                "OrderPlannedTotalQty": order["TotalQuantity"],
                "ProductionUnit": order["ProductionUnit"],
                "Plant": order["ProductionPlant"],
                "WorkCenter": op["WorkCenter"],
                "WorkCenterTypeCode": op["WorkCenterTypeCode"],
                "FinalConfirmationType": "X" if is_final else (final_type if final_type != "X" else ""),
                "IsFinalConfirmation": is_final,
                "IsReversed": False,
                "IsReversal": False,
                "APIConfHasNoGoodsMovements": posted is None,
                "ConfirmationEntryDate": ctx.today.isoformat(),
                "ConfirmationEntryTime": ctx.now.time().isoformat(),
                "EnteredByUser": ctx.user,
                "PostingDate": posting_date.isoformat(),
                "ConfirmationUnit": unit,
                "ConfirmationUnitISOCode": op["OperationUnitISOCode"],
                "ConfirmationYieldQuantity": dec_str(yield_qty),
                "ConfirmationScrapQuantity": dec_str(scrap),
                "ConfirmationReworkQuantity": dec_str(rework),
            }
            self._store(conf)
            if posted is not None:
                self._link(conf, posted.items)
            self._apply_to_operation(op, yield_qty, scrap, rework, is_final, conf, ctx)
            orders.refresh_status(store, order, ctx)
        group, count = conf["ConfirmationGroup"], conf["ConfirmationCount"]
        text = f"Confirmation of order {number} saved (no. {group}, counter {count})"
        ctx.info("RU/100", text, "success")
        if posted is not None:
            ctx.info("M7/060", f"Document {posted.header['MaterialDocument']} posted")
        return conf

    def _goods_movements(
        self, order: Entity, op: Entity, movements: list[Entity] | None, values: Entity, quantity: Decimal
    ) -> list[Entity]:
        if movements is not None:
            items = []
            for movement in movements:
                item = {k: movement[k] for k in _ITEM_FIELDS if k in movement}
                item["ManufacturingOrder"] = movement.get("OrderID") or order["ManufacturingOrder"]
                if movement.get("OrderItem"):
                    item["ManufacturingOrderItem"] = movement["OrderItem"]
                items.append(item)
            return items
        if values.get("APIConfHasNoGoodsMovements"):
            return []
        total = to_decimal(order["TotalQuantity"])
        backflush = []
        for comp in orders.components(self.rt.store, order["ManufacturingOrder"]):
            if (
                comp.get("MatlCompIsMarkedForBackflush")
                and comp["ManufacturingOrderOperation"] == op["ManufacturingOrderOperation"]
            ):
                qty = postings.quantity_share(to_decimal(comp["RequiredQuantity"]), quantity, total)
                if qty > 0:
                    backflush.append(
                        {
                            "Material": comp["Material"],
                            "Plant": comp["Plant"],
                            "StorageLocation": comp["StorageLocation"],
                            "Batch": comp["Batch"],
                            "GoodsMovementType": "261",
                            "EntryUnit": comp["EntryUnit"],
                            "QuantityInEntryUnit": dec_str(qty),
                            "ManufacturingOrder": order["ManufacturingOrder"],
                            "Reservation": comp["Reservation"],
                            "ReservationItem": comp["ReservationItem"],
                        }
                    )
        return backflush

    def _link(self, conf: Entity, items: list[Entity]) -> None:
        for item in items:
            link = {k: item[k] for k in _ITEM_FIELDS if k in item}
            link.update(
                {
                    "ConfirmationGroup": conf["ConfirmationGroup"],
                    "ConfirmationCount": conf["ConfirmationCount"],
                    "MaterialDocument": item["MaterialDocument"],
                    "MaterialDocumentItem": item["MaterialDocumentItem"],
                    "MaterialDocumentYear": item["MaterialDocumentYear"],
                    "OrderType": conf["OrderType"],
                    "OrderID": item.get("ManufacturingOrder") or conf["OrderID"],
                    "OrderItem": item.get("ManufacturingOrderItem") or "",
                    "ManufacturingOrderCategory": "10",
                }
            )
            self.rt.store.put(
                CONF_MOVEMENT,
                _movement_key(link),
                link,
                parent=make_key(conf["ConfirmationGroup"], conf["ConfirmationCount"]),
            )

    def _apply_to_operation(
        self,
        op: Entity,
        yield_qty: Decimal,
        scrap: Decimal,
        rework: Decimal,
        is_final: bool,
        conf: Entity,
        ctx: Context,
    ) -> None:
        op["OpTotalConfirmedYieldQty"] = dec_str(to_decimal(op["OpTotalConfirmedYieldQty"]) + yield_qty)
        op["_scrap"] = dec_str(to_decimal(op.get("_scrap")) + scrap)
        op["_rework"] = dec_str(to_decimal(op.get("_rework")) + rework)
        op["_confirmations"] = int(op.get("_confirmations", 0)) + (-1 if conf.get("IsReversal") else 1)
        if not op.get("OpActualExecutionStartDate"):
            op["OpActualExecutionStartDate"] = conf.get("ConfirmedExecutionStartDate") or conf["PostingDate"]
            op["OpActualExecutionStartTime"] = conf.get("ConfirmedExecutionStartTime") or ctx.now.time().isoformat()
        if is_final:
            op["OpActualExecutionEndDate"] = conf.get("ConfirmedExecutionEndDate") or conf["PostingDate"]
            op["OpActualExecutionEndTime"] = conf.get("ConfirmedExecutionEndTime") or ctx.now.time().isoformat()
        op["OperationIsConfirmed"] = "X" if is_final else ""
        op["OperationIsPartiallyConfirmed"] = "X" if op["_confirmations"] > 0 and not is_final else ""
        orders.touch(op, ctx)
        orders.save_operation(self.rt.store, op)

    # --- cancel ------------------------------------------------------------------------------

    def call(
        self, function: FunctionImport, params: dict[str, Any], ctx: Context, if_match: str | None
    ) -> FunctionResult:
        if function.name != "CancelProdnOrdConf":
            return super().call(function, params, ctx, if_match)
        rt, store = self.rt, self.rt.store
        group, count = str(params["ConfirmationGroup"]), str(params["ConfirmationCount"])
        with store.transaction():
            original = store.get(CONFIRMATION, make_key(group, count))
            if original is None:
                raise messages.confirmation_not_cancellable(f"Confirmation {group} counter {count} does not exist")
            if original.get("IsReversed") or original.get("IsReversal"):
                raise messages.confirmation_not_cancellable(
                    f"Confirmation {group} counter {count} is already cancelled or is a cancellation"
                )
            number = original["OrderID"]
            order = orders.load(store, number)
            orders.check_lock(rt, number)
            if order.get("OrderIsClosed"):
                raise messages.status_active("CLSD", number)
            posting_date = date.fromisoformat(params.get("PostingDate") or ctx.today.isoformat())
            orders.posting_period_check(rt, posting_date)
            op = orders.find_operation(store, number, original["OrderOperation"], original["Sequence"])
            linked = store.children(CONF_MOVEMENT, make_key(group, count))
            originals = [
                store.get(
                    MATDOC_ITEM, make_key(m["MaterialDocumentYear"], m["MaterialDocument"], m["MaterialDocumentItem"])
                )
                for m in linked
            ]
            posted = None
            if originals:
                items = [i for i in originals if i is not None]
                posted = postings.post(
                    rt, ctx, {"PostingDate": posting_date.isoformat()}, postings.reversal_items(items)
                )
                for item in items:
                    item["GoodsMovementIsCancelled"] = True
                    store.put(
                        MATDOC_ITEM,
                        make_key(item["MaterialDocumentYear"], item["MaterialDocument"], item["MaterialDocumentItem"]),
                        item,
                        parent=make_key(item["MaterialDocumentYear"], item["MaterialDocument"]),
                    )
            op = orders.find_operation(store, number, original["OrderOperation"], original["Sequence"])
            op["_conf_count"] = int(op.get("_conf_count", 0)) + 1
            reversal: Entity = {
                **original,
                "ConfirmationCount": str(op["_conf_count"]),
                "IsReversal": True,
                "IsReversed": False,
                "ExternalSystemConfirmation": params.get("ExternalSystemConfirmation"),
                "ConfirmationText": params.get("ConfirmationText") or "",
                "PostingDate": posting_date.isoformat(),
                "ConfirmationEntryDate": ctx.today.isoformat(),
                "ConfirmationEntryTime": ctx.now.time().isoformat(),
                "EnteredByUser": ctx.user,
                "APIConfHasNoGoodsMovements": posted is None,
            }
            original["IsReversed"] = True
            self._store(original)
            self._store(reversal)
            if posted is not None:
                self._link(reversal, posted.items)
            was_final = bool(original.get("IsFinalConfirmation"))
            self._apply_to_operation(
                op,
                -to_decimal(original["ConfirmationYieldQuantity"]),
                -to_decimal(original["ConfirmationScrapQuantity"]),
                -to_decimal(original["ConfirmationReworkQuantity"]),
                False if was_final else bool(op.get("OperationIsConfirmed")),
                reversal,
                ctx,
            )
            orders.refresh_status(store, orders.load(store, number), ctx)
        ctx.info("RU/100", f"Cancellation of confirmation {group} counter {count} saved", "success")
        return FunctionResult(self.complete("ProdnOrdConf2", reversal), set_name="ProdnOrdConf2")
