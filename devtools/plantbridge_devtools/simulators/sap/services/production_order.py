"""API_PRODUCTION_ORDER_2_SRV: read orders with operations, components, item and status;
``ReleaseOrder`` and ``TechlyCmpltOrder`` (POST, ``If-Match`` with the order's ETag required)."""

from __future__ import annotations

from typing import Any

from plantbridge_devtools.simulators.sap import messages, orders
from plantbridge_devtools.simulators.sap.edm import FunctionImport
from plantbridge_devtools.simulators.sap.odata import Entity, etag_matches, etag_of
from plantbridge_devtools.simulators.sap.runtime import Context, Runtime
from plantbridge_devtools.simulators.sap.schemas import production_order as schema
from plantbridge_devtools.simulators.sap.services.base import FunctionResult, ServiceHandler
from plantbridge_devtools.simulators.sap.state import COMPONENT, OPERATION, ORDER, ORDER_ITEM


def function_message(kind: str, msg_class: str, number: str, text: str, *variables: str) -> dict[str, Any]:
    message: dict[str, Any] = {
        "SystemMessageType": kind,
        "SystemMessageIdentification": msg_class,
        "SystemMessageNumber": number,
        "SystemMessageLongText": text,
    }
    for index, value in enumerate(variables[:4], start=1):
        message[f"SystemMessageVariable{index}"] = value
    return message


class ProductionOrderService(ServiceHandler):
    schema = schema.SCHEMA
    kinds = {
        "A_ProductionOrder_2": ORDER,
        "A_ProductionOrderOperation_2": OPERATION,
        "A_ProductionOrderComponent_2": COMPONENT,
        "A_ProductionOrderItem_2": ORDER_ITEM,
    }

    def __init__(self, rt: Runtime) -> None:
        super().__init__(rt)
        store = rt.store

        def children(set_name: str, read: Any) -> Any:
            return lambda order: [self.complete(set_name, e) for e in read(store, order["ManufacturingOrder"])]

        self.navigators = {
            ("A_ProductionOrder_2", "to_ProductionOrderOperation"): children(
                "A_ProductionOrderOperation_2", orders.operations
            ),
            ("A_ProductionOrder_2", "to_ProductionOrderComponent"): children(
                "A_ProductionOrderComponent_2", orders.components
            ),
            ("A_ProductionOrder_2", "to_ProductionOrderItem"): children(
                "A_ProductionOrderItem_2", lambda s, o: [orders.item(s, o)]
            ),
            ("A_ProductionOrder_2", "to_ProductionOrderStatus"): lambda order: [
                self.complete("A_ProductionOrderStatus_2", e) for e in orders.status_entities(order)
            ],
        }

    def entities(self, set_name: str) -> list[Entity]:
        if set_name == "A_ProductionOrderStatus_2":
            return [
                self.complete(set_name, status)
                for order in self.rt.store.all(ORDER)
                for status in orders.status_entities(order)
            ]
        return super().entities(set_name)

    def lookup(self, set_name: str, key: dict[str, str]) -> Entity | None:
        if set_name == "A_ProductionOrderStatus_2":
            order = self.rt.store.get(ORDER, orders.order_key(key["ManufacturingOrder"]))
            statuses = orders.status_entities(order) if order else []
            found = [s for s in statuses if s["StatusCode"] == key["StatusCode"]]
            return self.complete(set_name, found[0]) if found else None
        return super().lookup(set_name, key)

    def call(
        self, function: FunctionImport, params: dict[str, Any], ctx: Context, if_match: str | None
    ) -> FunctionResult:
        number = str(params["ManufacturingOrder"])
        order = orders.load(self.rt.store, number)
        current = etag_of(schema.PRODUCTION_ORDER, order)
        if not if_match:
            raise messages.precondition_required()
        if current is not None and not etag_matches(if_match, current):
            raise messages.precondition_failed()
        number = order["ManufacturingOrder"]
        if function.name == "ReleaseOrder":
            if orders.release(self.rt, ctx, number):
                text = f"Order {number} released"
                ctx.info("CO/093", text, "success")
                return FunctionResult(function_message("S", "CO", "093", text, number))
            text = f"Order {number} is already released"
            ctx.info("CO/093", text, "info")
            return FunctionResult(function_message("I", "CO", "093", text, number))
        if function.name == "TechlyCmpltOrder":
            if orders.complete_technically(self.rt, ctx, number):
                text = f"Order {number} technically completed"
                ctx.info("CO/097", text, "success")
                return FunctionResult(function_message("S", "CO", "097", text, number))
            text = f"Order {number} is already technically completed"
            ctx.info("CO/097", text, "info")
            return FunctionResult(function_message("I", "CO", "097", text, number))
        return super().call(function, params, ctx, if_match)
