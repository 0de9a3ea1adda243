"""The simulator's admin API (JSON, no auth, never fault-injected) and its seed data.

=======  ========================  =============================================================
GET      /admin/health             liveness, system and version
GET      /admin/state              every record by model (the common state snapshot)
POST     /admin/reset              delete all data and faults, seed again
GET/PUT/DELETE /admin/faults       fault injection (:class:`FaultsIn`)
PATCH    /admin/settings           ``refuse_duplicates``, ``denied`` ({model: [operation]}),
                                   ``webhook_url``, ``webhook_paused``
POST     /admin/productions        a draft MO with components and work orders; ``confirm`` confirms it
GET      /admin/webhooks           webhook deliveries attempted
=======  ========================  =============================================================
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from plantbridge_devtools.simulators.common.state import SqliteState
from plantbridge_devtools.simulators.odoo.faults import FaultConfig, FaultsIn, OdooFaults
from plantbridge_devtools.simulators.odoo.orm import Env, now_text
from plantbridge_devtools.simulators.odoo.service import Service

UOMS = {"Units": "uom.product_uom_unit", "kg": "uom.product_uom_kgm", "L": "uom.product_uom_litre",
        "m": "uom.product_uom_meter"}
LOSSES = [("mrp.block_reason0", "Material Availability", "availability", True),
          ("mrp.block_reason1", "Equipment Failure", "availability", True),
          ("mrp.block_reason2", "Setup and Adjustments", "availability", True),
          ("mrp.block_reason4", "Reduced Speed", "performance", False),
          ("mrp.block_reason5", "Process Defect", "quality", True),
          ("mrp.block_reason6", "Reduced Yield", "quality", True),
          ("mrp.block_reason7", "Fully Productive Time", "productive", False)]
STAGES = [("maintenance.stage_0", "New Request", 1, False), ("maintenance.stage_1", "In Progress", 2, False),
          ("maintenance.stage_3", "Repaired", 3, True), ("maintenance.stage_4", "Scrap", 4, True)]


def _bound(env: Env, xmlid: str, model: str, vals: dict[str, Any]) -> int:
    rid = env.create(model, vals)
    env.bind_xmlid(xmlid, model, rid)
    return rid


def seed(state: SqliteState, version: str) -> None:
    """Master data: users, units, locations, loss reasons, maintenance stages/team, products, centers."""
    with state.transaction():
        env = Env(state, version)
        env.create("res.users", {"name": "OdooBot", "login": "__system__"})
        env.create("res.users", {"name": "Administrator", "login": "admin"})
        for name, xmlid in UOMS.items():
            _bound(env, xmlid, "uom.uom", {"name": name})
        for xmlid, name in (("stock.stock_location_stock", "WH/Stock"),
                            ("stock.stock_location_scrapped", "Virtual Locations/Scrap"),
                            ("stock.location_production", "Virtual Locations/Production")):
            _bound(env, xmlid, "stock.location", {"name": name})
        for kind in ("availability", "performance", "quality", "productive"):
            _bound(env, f"mrp.category_{kind}", "mrp.workcenter.productivity.loss.type", {"loss_type": kind})
        for seq, (xmlid, name, kind, manual) in enumerate(LOSSES):
            type_id = env.xmlid(f"mrp.category_{kind}")
            _bound(env, xmlid, "mrp.workcenter.productivity.loss", {
                "name": name, "loss_type": kind, "manual": manual, "sequence": seq,
                "loss_id": type_id[1] if type_id else False})
        for xmlid, name, seq, done in STAGES:
            _bound(env, xmlid, "maintenance.stage", {"name": name, "sequence": seq, "done": done, "fold": done})
        _bound(env, "maintenance.equipment_team_maintenance", "maintenance.team", {"name": "Internal Maintenance"})
        for code, name in (("ASSY-01", "Assembly Line 1"), ("PACK-01", "Packing Line 1")):
            env.create("mrp.workcenter", {"name": name, "code": code, "working_state": "normal", "active": True})
        env.create("maintenance.equipment", {"name": "Press P-100", "serial_no": "P-100"})


class Component(BaseModel):
    product: str = Field(description="default_code (internal reference)")
    quantity: float = Field(gt=0)
    uom: str = "Units"
    operation: int | None = Field(default=None, description="index of the work order consuming it")


class Operation(BaseModel):
    name: str
    workcenter: str = Field(description="mrp.workcenter code")
    duration_expected: float = 60.0


class ProductionIn(BaseModel):
    product: str = "FG-100"
    quantity: float = Field(default=100, gt=0)
    uom: str = "Units"
    origin: str | None = None
    consumption: str = "flexible"
    confirm: bool = True
    operations: list[Operation] = Field(default_factory=lambda: [
        Operation(name="Assembly", workcenter="ASSY-01"), Operation(name="Packing", workcenter="PACK-01")])
    components: list[Component] = Field(default_factory=lambda: [
        Component(product="RM-OIL", quantity=4.5, uom="L", operation=0), Component(product="RM-STEEL", quantity=200)])
    stock: float = Field(default=1000, description="qty_available given to new products")


def _product(env: Env, code: str, uom: str, stock: float) -> int:
    for rec in env.all("product.product"):
        if rec.get("default_code") == code:
            return int(rec["id"])
    uom_id = next(r["id"] for r in env.all("uom.uom") if r["name"] == uom)
    return env.create("product.product", {"name": code, "default_code": code, "uom_id": uom_id,
                                          "qty_available": stock})


def create_production(state: SqliteState, service: Service, body: ProductionIn) -> dict[str, Any]:
    with state.transaction():
        env = Env(state, service.version)
        uom = {r["name"]: r["id"] for r in env.all("uom.uom")}
        stock = env.xmlid("stock.stock_location_stock")
        prod_loc = env.xmlid("stock.location_production")
        assert stock and prod_loc
        product = _product(env, body.product, body.uom, body.stock)
        number = state.next_number("seq:mrp.production")
        name = f"WH/MO/{number:05d}"
        mo = env.create("mrp.production", {
            "name": name, "product_id": product, "product_qty": body.quantity, "product_uom_id": uom[body.uom],
            "product_uom_qty": body.quantity, "qty_producing": 0.0, "state": "draft", "origin": body.origin or False,
            "date_start": now_text(), "company_id": 1, "consumption": body.consumption, "user_id": 2,
            "location_src_id": stock[1], "location_dest_id": stock[1], "production_location_id": prod_loc[1],
            "reservation_state": False, "is_locked": False, "priority": "0"})
        centers = {r.get("code"): r["id"] for r in env.all("mrp.workcenter")}
        wos = []
        for seq, op in enumerate(body.operations):
            wo_vals: dict[str, Any] = {
                "name": op.name, "production_id": mo, "workcenter_id": centers[op.workcenter], "product_id": product,
                "product_uom_id": uom[body.uom], "qty_production": body.quantity, "state": (
                    "ready" if service.version == "19.0" else "pending"),
                "duration_expected": op.duration_expected, "company_id": 1}
            if service.version != "17.0":
                wo_vals["sequence"] = (seq + 1) * 10
            wos.append(env.create("mrp.workorder", wo_vals))
        for comp in body.components:
            env.create("stock.move", {
                "product_id": _product(env, comp.product, comp.uom, body.stock), "product_uom": uom[comp.uom],
                "product_uom_qty": comp.quantity, "quantity": 0.0, "picked": False, "state": "draft",
                "raw_material_production_id": mo, "unit_factor": comp.quantity / body.quantity,
                "workorder_id": wos[comp.operation] if comp.operation is not None and wos else False,
                "location_id": stock[1], "location_dest_id": prod_loc[1], "manual_consumption": False,
                "reference": name, "origin": name, "company_id": 1})
        env.create("stock.move", {
            "product_id": product, "product_uom": uom[body.uom], "product_uom_qty": body.quantity, "quantity": 0.0,
            "state": "draft", "production_id": mo, "location_id": prod_loc[1], "location_dest_id": stock[1],
            "reference": name, "origin": name, "company_id": 1, "picked": False})
    confirmed: list[int] = []
    if body.confirm:
        _, confirmed = service.call(2, "mrp.production", "action_confirm", [[mo]], {})
    return {"id": mo, "name": name, "confirmed_webhook": confirmed}


class SettingsIn(BaseModel):
    refuse_duplicates: bool | None = None
    denied: dict[str, list[str]] | None = None
    webhook_url: str | None = None
    webhook_paused: bool | None = None


def build_admin(state: SqliteState, service: Service, faults: OdooFaults, webhook: Any, version: str) -> APIRouter:
    router = APIRouter(prefix="/admin", tags=["admin"])

    @router.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "system": "odoo", "version": version}

    @router.get("/state")
    def get_state() -> dict[str, Any]:
        return state.snapshot()

    @router.post("/reset")
    def reset() -> dict[str, Any]:
        url = state.get_setting("webhook_url")
        state.reset()
        faults.configure(FaultConfig())
        seed(state, version)
        if url:
            state.set_setting("webhook_url", url)
        return {"reset": True}

    @router.get("/faults")
    def get_faults() -> dict[str, Any]:
        return faults.config.to_json()

    @router.put("/faults")
    def put_faults(body: FaultsIn) -> dict[str, Any]:
        return faults.configure(FaultConfig(**body.model_dump())).to_json()

    @router.delete("/faults")
    def clear_faults() -> dict[str, Any]:
        return faults.configure(FaultConfig()).to_json()

    @router.patch("/settings")
    def patch_settings(body: SettingsIn) -> dict[str, Any]:
        sim = dict(state.get_setting("sim", {}) or {})
        for key in ("refuse_duplicates", "denied"):
            if getattr(body, key) is not None:
                sim[key] = getattr(body, key)
        state.set_setting("sim", sim)
        for key in ("webhook_url", "webhook_paused"):
            if getattr(body, key) is not None:
                state.set_setting(key, getattr(body, key))
        return {**sim, "webhook_paused": state.get_setting("webhook_paused", False)}

    @router.post("/productions")
    def post_production(body: ProductionIn) -> dict[str, Any]:
        result = create_production(state, service, body)
        webhook.send(result.pop("confirmed_webhook"))
        return result

    @router.get("/webhooks")
    def webhooks() -> list[dict[str, Any]]:
        return list(webhook.sent)

    return router
