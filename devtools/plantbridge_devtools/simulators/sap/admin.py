"""Admin API (JSON, no auth, no CSRF, never subject to fault injection) under ``/admin``.

=======  ==================================  ====================================================
method   path                                purpose
=======  ==================================  ====================================================
GET      /admin/health                       liveness, client and SID
POST     /admin/orders                       create a production order (:class:`OrderIn`); 201
GET      /admin/orders/{order}               one order with operations, components, item, status
POST     /admin/orders/{order}/release       release (emits Changed: S/4HANA has no Released event)
POST     /admin/orders/{order}/teco          technically complete (emits Changed)
POST     /admin/orders/{order}/change        CO02: quantity, dates, operations, components (:class:`OrderChangeIn`)
POST     /admin/orders/{order}/status        teco, lock, unlock, deletion_flag, reset_deletion_flag, revoke_release
POST     /admin/inspection-lots              create an inspection lot for an order
GET      /admin/rules                        current rules
PUT      /admin/rules                        replace the rules (:class:`RulesIn`)
PATCH    /admin/rules                        change some rules
DELETE   /admin/rules                        clear all rules
GET      /admin/faults                       current fault injection
PUT      /admin/faults                       set fault injection (:class:`FaultsIn`)
DELETE   /admin/faults                       no faults
POST     /admin/csrf/expire                  invalidate every session and CSRF token
GET      /admin/state                        everything stored, with counts
GET      /admin/events                       webhook delivery log
GET      /admin/traffic                      every OData request received: method, service, path, query, status
POST     /admin/reset                        delete all data, rules and faults
=======  ==================================  ====================================================
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from plantbridge_devtools.simulators.sap import inspection, messages, order_changes, order_creation, orders
from plantbridge_devtools.simulators.sap.faults import FaultConfig
from plantbridge_devtools.simulators.sap.messages import SapError
from plantbridge_devtools.simulators.sap.odata import Entity, to_decimal
from plantbridge_devtools.simulators.sap.rules import RejectRule, Rules
from plantbridge_devtools.simulators.sap.runtime import Context, Runtime
from plantbridge_devtools.simulators.sap.state import (
    CONF_MOVEMENT,
    CONFIRMATION,
    INSPECTION_LOT,
    MATDOC,
    MATDOC_ITEM,
    NOTIFICATION,
    ORDER,
    USAGE_DECISION,
    make_key,
)

ADMIN_USER = "SAP_ADMIN"


class StandardValueIn(BaseModel):
    unit: str
    quantity: Decimal


class OperationIn(BaseModel):
    operation: str = Field(description="Operation number, e.g. 0010")
    work_center: str
    control_key: str = "PP01"
    description: str = ""
    quantity: Decimal | None = Field(default=None, description="Planned quantity; default the order quantity")
    standard_values: list[StandardValueIn] = Field(default_factory=list, max_length=6)


class ComponentIn(BaseModel):
    item: str = Field(description="BOM item number, e.g. 0010")
    material: str
    quantity: Decimal
    unit: str
    storage_location: str = ""
    batch: str = ""
    backflush: bool = False
    operation: str | None = Field(default=None, description="Operation the component is assigned to")
    description: str = ""


class OrderIn(BaseModel):
    order: str | None = Field(default=None, description="Order number; drawn from the number range if omitted")
    order_type: str = "PP01"
    plant: str
    material: str
    quantity: Decimal = Field(gt=0)
    unit: str
    storage_location: str = ""
    batch: str = ""
    start: datetime | date | None = None
    end: datetime | date | None = None
    mrp_controller: str = "001"
    production_supervisor: str = ""
    production_version: str = ""
    tolerance_pct: Decimal = Field(default=Decimal(0), ge=0, description="Overdelivery tolerance in percent")
    inspection_lot_origin: Literal["03", "04"] | None = None
    operations: list[OperationIn] = Field(default_factory=list)
    components: list[ComponentIn] = Field(default_factory=list)
    release: bool = False


class OperationChangeIn(BaseModel):
    action: Literal["add", "change", "remove"]
    operation: str = Field(description="Operation number, e.g. 0030")
    work_center: str | None = None
    description: str | None = None
    quantity: Decimal | None = None
    control_key: str | None = None


class ComponentChangeIn(BaseModel):
    action: Literal["add", "change", "remove"]
    item: str = Field(description="BOM item number, e.g. 0030")
    material: str | None = None
    quantity: Decimal | None = None
    unit: str | None = None
    storage_location: str | None = None
    batch: str | None = None
    backflush: bool | None = None
    operation: str | None = None


class OrderChangeIn(BaseModel):
    """One CO02 change; every part optional. Emits one Changed event."""

    quantity: Decimal | None = Field(default=None, gt=0)
    start: datetime | date | None = None
    end: datetime | date | None = None
    operations: list[OperationChangeIn] = Field(default_factory=list)
    components: list[ComponentChangeIn] = Field(default_factory=list)


class StatusIn(BaseModel):
    action: Literal["teco", "lock", "unlock", "deletion_flag", "reset_deletion_flag", "revoke_release"]


class InspectionLotIn(BaseModel):
    order: str
    origin: Literal["03", "04"] = "04"
    quantity: Decimal | None = None


class RejectRuleIn(BaseModel):
    service: str
    count: int = Field(ge=1)
    code: str
    message: str
    status: int = Field(default=400, ge=400, le=599)
    methods: list[str] | None = None


class RulesIn(BaseModel):
    period_closed: bool = False
    refuse_duplicate_keys: bool = False
    locked_orders: dict[str, str] = Field(default_factory=dict, description="order number -> locking user")
    reject: list[RejectRuleIn] = Field(default_factory=list)


class RulesPatch(BaseModel):
    period_closed: bool | None = None
    refuse_duplicate_keys: bool | None = None
    locked_orders: dict[str, str] | None = None
    reject: list[RejectRuleIn] | None = None


class FaultsIn(BaseModel):
    latency_ms: int = Field(default=0, ge=0)
    latency_jitter_ms: int = Field(default=0, ge=0)
    error_503_ratio: float = Field(default=0.0, ge=0, le=1)
    error_503_format: Literal["html", "json"] = "html"
    hang_ratio: float = Field(default=0.0, ge=0, le=1)
    hang_seconds: float = Field(default=30.0, ge=0)
    after_commit_ratio: float = Field(default=0.0, ge=0, le=1)
    after_commit_mode: Literal["503", "hang"] = "503"
    services: list[str] | None = None
    seed: int | None = None


def _as_datetime(value: datetime | date | None) -> datetime | None:
    """Order dates are plant-local wall-clock times without a zone, as in SAP."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        return datetime.combine(value, time(6, 0))
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def _public(entity: Entity) -> Entity:
    return {k: v for k, v in entity.items() if not k.startswith("_")}


def order_snapshot(rt: Runtime, number: str) -> dict[str, Any]:
    store = rt.store
    order = orders.load(store, number)
    key = order["ManufacturingOrder"]
    return {
        **_public(order),
        "system_status": orders.system_status(order),
        "tolerance_pct": order.get("_tolerance_pct", "0"),
        "inspection_lot_origin": order.get("_inspection_origin") or None,
        "operations": [
            {
                **_public(op),
                "ConfirmationGroup": op["_conf_group"],
                "ScrapQuantity": op.get("_scrap", "0"),
                "ReworkQuantity": op.get("_rework", "0"),
            }
            for op in orders.operations(store, key)
        ],
        "components": [_public(c) for c in orders.components(store, key)],
        "item": _public(orders.item(store, key)),
    }


def _rule_from(model: RejectRuleIn) -> RejectRule:
    data = model.model_dump(exclude_none=True)
    return RejectRule(**data)


def build_router(rt: Runtime) -> APIRouter:
    router = APIRouter(prefix="/admin", tags=["admin"])

    def context() -> Context:
        return Context(user=ADMIN_USER)

    @router.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "client": rt.settings.client, "sid": rt.settings.sid}

    @router.post("/orders", status_code=201)
    async def create_order(body: OrderIn) -> dict[str, Any]:
        ctx = context()
        spec = order_creation.OrderSpec(
            plant=body.plant,
            material=body.material,
            quantity=body.quantity,
            unit=body.unit,
            order=body.order,
            order_type=body.order_type,
            storage_location=body.storage_location,
            batch=body.batch,
            start=_as_datetime(body.start),
            end=_as_datetime(body.end),
            mrp_controller=body.mrp_controller,
            production_supervisor=body.production_supervisor,
            production_version=body.production_version,
            tolerance_pct=body.tolerance_pct,
            inspection_lot_origin=body.inspection_lot_origin,
            operations=[
                order_creation.OperationSpec(
                    operation=o.operation,
                    work_center=o.work_center,
                    control_key=o.control_key,
                    description=o.description,
                    quantity=o.quantity,
                    standard_values=[(s.unit, s.quantity) for s in o.standard_values],
                )
                for o in body.operations
            ],
            components=[
                order_creation.ComponentSpec(
                    item=c.item,
                    material=c.material,
                    quantity=c.quantity,
                    unit=c.unit,
                    storage_location=c.storage_location,
                    batch=c.batch,
                    backflush=c.backflush,
                    operation=c.operation,
                    description=c.description,
                )
                for c in body.components
            ],
        )
        header = order_creation.create(rt, ctx, spec)
        if body.release:
            orders.release(rt, ctx, header["ManufacturingOrder"])
        rt.publisher.publish(ctx.events)
        return order_snapshot(rt, header["ManufacturingOrder"])

    @router.get("/orders/{order}")
    async def get_order(order: str) -> dict[str, Any]:
        return order_snapshot(rt, order)

    @router.post("/orders/{order}/release")
    async def release_order(order: str) -> dict[str, Any]:
        ctx = context()
        changed = orders.release(rt, ctx, order)
        rt.publisher.publish(ctx.events)
        return {"released": changed, "order": order_snapshot(rt, order)}

    @router.post("/orders/{order}/teco")
    async def teco_order(order: str) -> dict[str, Any]:
        ctx = context()
        changed = orders.complete_technically(rt, ctx, order)
        rt.publisher.publish(ctx.events)
        return {"technically_completed": changed, "order": order_snapshot(rt, order)}

    @router.post("/orders/{order}/change")
    async def change_order(order: str, body: OrderChangeIn) -> dict[str, Any]:
        ctx = context()
        spec = order_changes.OrderChange(
            quantity=body.quantity, start=_as_datetime(body.start), end=_as_datetime(body.end),
            operations=[order_changes.OperationChange(**o.model_dump()) for o in body.operations],
            components=[order_changes.ComponentChange(**c.model_dump()) for c in body.components],
        )
        order_changes.change(rt, ctx, order, spec)
        rt.publisher.publish(ctx.events)
        return order_snapshot(rt, order)

    @router.post("/orders/{order}/status")
    async def order_status(order: str, body: StatusIn) -> dict[str, Any]:
        ctx = context()
        changed = order_changes.set_status(rt, ctx, order, body.action)
        rt.publisher.publish(ctx.events)
        return {"changed": changed, "order": order_snapshot(rt, order)}

    @router.post("/inspection-lots", status_code=201)
    async def create_lot(body: InspectionLotIn) -> dict[str, Any]:
        ctx = context()
        with rt.store.transaction():
            order = orders.load(rt.store, body.order)
            quantity = body.quantity if body.quantity is not None else to_decimal(order["TotalQuantity"])
            return inspection.create_lot(rt.store, ctx, order, origin=body.origin, quantity=quantity)

    @router.get("/rules")
    async def get_rules() -> dict[str, Any]:
        return rt.rules.current.to_json()

    @router.put("/rules")
    async def put_rules(body: RulesIn) -> dict[str, Any]:
        rules = Rules(body.period_closed, dict(body.locked_orders), [_rule_from(r) for r in body.reject],
                      body.refuse_duplicate_keys)
        return rt.rules.replace(Rules.from_json(rules.to_json())).to_json()

    @router.patch("/rules")
    async def patch_rules(body: RulesPatch) -> dict[str, Any]:
        patch: dict[str, Any] = {}
        if body.period_closed is not None:
            patch["period_closed"] = body.period_closed
        if body.refuse_duplicate_keys is not None:
            patch["refuse_duplicate_keys"] = body.refuse_duplicate_keys
        if body.locked_orders is not None:
            patch["locked_orders"] = body.locked_orders
        if body.reject is not None:
            patch["reject"] = [_rule_from(r).__dict__ for r in body.reject]
        return rt.rules.merge(patch).to_json()

    @router.delete("/rules")
    async def clear_rules() -> dict[str, Any]:
        return rt.rules.clear().to_json()

    @router.get("/faults")
    async def get_faults() -> dict[str, Any]:
        return rt.faults.config.to_json()

    @router.put("/faults")
    async def put_faults(body: FaultsIn) -> dict[str, Any]:
        rt.faults.configure(FaultConfig(**body.model_dump()))
        return rt.faults.config.to_json()

    @router.delete("/faults")
    async def clear_faults() -> dict[str, Any]:
        rt.faults.configure(FaultConfig())
        return rt.faults.config.to_json()

    @router.post("/csrf/expire")
    async def expire_tokens() -> dict[str, Any]:
        return {"expired_sessions": rt.sessions.expire_all()}

    @router.get("/state")
    async def state() -> dict[str, Any]:
        store = rt.store
        confirmations = [
            {
                **_public(c),
                "goods_movements": [
                    _public(m)
                    for m in store.children(CONF_MOVEMENT, make_key(c["ConfirmationGroup"], c["ConfirmationCount"]))
                ],
            }
            for c in store.all(CONFIRMATION)
        ]
        documents = [
            {
                **_public(d),
                "items": [
                    _public(i)
                    for i in store.children(MATDOC_ITEM, make_key(d["MaterialDocumentYear"], d["MaterialDocument"]))
                ],
            }
            for d in store.all(MATDOC)
        ]
        body = {
            "orders": [order_snapshot(rt, o["ManufacturingOrder"]) for o in store.all(ORDER)],
            "confirmations": confirmations,
            "material_documents": documents,
            "inspection_lots": [_public(lot) for lot in store.all(INSPECTION_LOT)],
            "usage_decisions": [_public(u) for u in store.all(USAGE_DECISION)],
            "notifications": [_public(n) for n in store.all(NOTIFICATION)],
            "rules": rt.rules.current.to_json(),
            "faults": rt.faults.config.to_json(),
        }
        body["counts"] = {k: len(v) for k, v in body.items() if isinstance(v, list)}
        return body

    @router.get("/events")
    async def event_log() -> list[dict[str, Any]]:
        return [d.to_json() for d in rt.publisher.deliveries]

    @router.get("/traffic")
    async def traffic() -> list[dict[str, Any]]:
        return list(rt.traffic)

    @router.post("/reset")
    async def reset() -> dict[str, Any]:
        rt.store.reset()
        rt.faults.configure(FaultConfig())
        rt.sessions.expire_all()
        rt.publisher.deliveries.clear()
        rt.traffic.clear()
        return {"reset": True}

    return router


async def sap_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """Admin calls answer SAP errors as ``{"error": {"code", "message"}}`` with their HTTP status."""
    assert isinstance(exc, SapError)
    status = 404 if exc.code in ("ZPB/003", messages.not_found("x").code) else exc.status
    return JSONResponse({"error": {"code": exc.code, "message": exc.message}}, status_code=status)
