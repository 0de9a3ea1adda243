"""The Odoo connector against the Odoo simulator over real HTTP: JSON-2 (19.0) and JSON-RPC (17.0/18.0)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from plantbridge.canonical.commands import (
    CompleteOrder,
    ConfirmOperation,
    GoodsMovement,
    GoodsMovementItem,
    MaintenanceNotification,
)
from plantbridge.canonical.events import ActivityTimes
from plantbridge.canonical.fields import Quantity
from plantbridge.connectors.errors import BusinessRejection, OrderNotFound, TransientError
from plantbridge.connectors.odoo import OdooConnector
from plantbridge.connectors.odoo_rpc import OdooRpc
from plantbridge_devtools.simulators.odoo.app import DEFAULT_KEY
from plantbridge_devtools.simulators.odoo.server import OdooServer

MODES = [("19.0", "json2"), ("19.0", "jsonrpc"), ("18.0", "jsonrpc"), ("17.0", "jsonrpc")]


@pytest.fixture(params=MODES, ids=[f"{v}-{a}" for v, a in MODES])
def odoo(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[OdooServer, str]]:
    version, api = request.param
    with OdooServer(str(tmp_path / "odoo.db"), version=version) as server:
        yield server, api


def conn(server: OdooServer, api: str, key: str = DEFAULT_KEY, timeout: float = 5) -> OdooConnector:
    return OdooConnector(OdooRpc(server.url, database="odoo", login="admin", api_key=key, api=api,  # type: ignore[arg-type]
                                 timeout=timeout), plant="3000", losses={"JAM": "mrp.block_reason1"})


def admin(server: OdooServer, method: str, path: str, body: Any = None) -> Any:
    r = httpx.request(method, f"{server.url}/admin/{path}", json=body, timeout=10)
    r.raise_for_status()
    return r.json()


def records(server: OdooServer, model: str) -> list[dict[str, Any]]:
    return list(admin(server, "GET", "state")["objects"].get(model, []))


def q(v: Any, uom: str = "H87") -> Quantity:
    return Quantity(quantity=Decimal(str(v)), uom=uom)


async def test_release_to_done_exactly_once(odoo: tuple[OdooServer, str]) -> None:
    server, api = odoo
    mo = admin(server, "POST", "productions", {})
    c = conn(server, api)
    order = await c.read_order(str(mo["id"]))
    assert order.released and order.erp_system == "odoo" and order.description.startswith("WH/MO/")
    assert [op.number for op in order.operations] == ["0010", "0020"]
    assert [(x.material, x.quantity.uom, x.operation) for x in order.components] == [
        ("RM-OIL", "LTR", "0010"), ("RM-STEEL", "H87", None)]
    conf = ConfirmOperation(operation="0010", work_center="ASSY-01", yield_qty=q(60), scrap_qty=q(2),
                            activities=ActivityTimes(machine_min=Decimal(30)))
    first = await c.confirm_operation(order, conf, key="k1", retry=False)
    again = await c.confirm_operation(order, conf, key="k1", retry=True)  # a retry after a lost answer
    assert not first.replayed and again.replayed
    await c.confirm_operation(order, ConfirmOperation(operation="0010", work_center="ASSY-01", yield_qty=q(38),
                                                      final=True), key="k2", retry=False)
    await c.goods_movement(order, GoodsMovement(items=[GoodsMovementItem(
        material="RM-OIL", quantity=q("4.5", "LTR"), movement_type="261")]), key="k3", retry=False)
    await c.confirm_operation(order, ConfirmOperation(operation="0020", work_center="PACK-01", yield_qty=q(98),
                                                      final=True), key="k4", retry=False)
    leak = MaintenanceNotification(equipment="P-100", priority=2, description="Hydraulic leak")
    await c.maintenance_notification(order, leak, key="k5", retry=False)
    await c.maintenance_notification(order, leak, key="k5", retry=True)
    now = datetime.now(UTC)
    await c.downtime("ASSY-01", now - timedelta(minutes=12), now, "JAM", key="k6")
    done = await c.complete_order(order, CompleteOrder(), key="k7", retry=False)
    assert (await c.complete_order(order, CompleteOrder(), key="k7", retry=True)).replayed
    assert "done" in (done.message or "")
    [prod] = [r for r in records(server, "mrp.production") if r["id"] == mo["id"]]
    assert prod["state"] == "done" and prod["qty_produced"] == 98
    moves = {r["id"]: r for r in records(server, "stock.move")}
    oil = next(m for m in moves.values() if m.get("raw_material_production_id") == mo["id"] and m["product_uom"] == 3)
    assert oil["quantity"] == 4.5 and oil["state"] == "done"
    assert len(records(server, "stock.scrap")) == 1 and len(records(server, "maintenance.request")) == 1
    # Every record plantbridge created has exactly one __plantbridge__ id.
    ids = Counter((r["model"], r["res_id"]) for r in records(server, "ir.model.data")
                  if r["module"] == "__plantbridge__")
    assert ids and max(ids.values()) == 1
    mine = [("stock.scrap", r["id"]) for r in records(server, "stock.scrap")] + [
        ("maintenance.request", r["id"]) for r in records(server, "maintenance.request")] + [
        ("stock.move.line", r["id"]) for r in records(server, "stock.move.line")] + [
        ("mrp.workcenter.productivity", r["id"]) for r in records(server, "mrp.workcenter.productivity")
        if str(r.get("description", "")).startswith("plantbridge")]
    assert sorted(mine) == sorted(ids)
    await c.aclose()


async def test_error_classes(odoo: tuple[OdooServer, str]) -> None:
    server, api = odoo
    mo = admin(server, "POST", "productions", {})
    c = conn(server, api, timeout=1)
    order = await c.read_order(str(mo["id"]))
    with pytest.raises(OrderNotFound):
        await c.read_order("999")
    admin(server, "PATCH", "settings", {"denied": {"stock.scrap": ["create"]}})
    with pytest.raises(BusinessRejection) as rej:
        await c.confirm_operation(order, ConfirmOperation(operation="0010", work_center="ASSY-01", yield_qty=q(5),
                                                          scrap_qty=q(1)), key="s1", retry=False)
    assert "Inventory/User" in rej.value.message and rej.value.code == "AccessError"
    admin(server, "PATCH", "settings", {"denied": {}})
    with pytest.raises(BusinessRejection) as rej:  # UserError with Odoo's own text
        await c.rpc.call("mrp.workcenter", "unblock", [1])
    assert rej.value.message == "It has already been unblocked." and rej.value.code == "UserError"
    with pytest.raises(BusinessRejection) as rej:
        await c.rpc.call("mrp.production", "write", [12345], vals={"origin": "x"})
    assert rej.value.code == "MissingError"
    for faults in ({"lock_ratio": 1.0}, {"error_5xx_ratio": 1.0}, {"hang_ratio": 1.0, "hang_seconds": 3}):
        admin(server, "PUT", "faults", faults)
        with pytest.raises(TransientError):
            await c.rpc.call("mrp.production", "read", [mo["id"]], fields=["state"])
    admin(server, "DELETE", "faults")
    bad = conn(server, api, key="f" * 40)
    with pytest.raises(BusinessRejection) as rej:
        await bad.read_order(str(mo["id"]))
    assert rej.value.code == "AccessDenied"
    await c.aclose()
    await bad.aclose()


async def test_consumptions_add_up_and_a_replay_changes_nothing(odoo: tuple[OdooServer, str]) -> None:
    server, api = odoo
    mo = admin(server, "POST", "productions", {})
    c = conn(server, api)
    order = await c.read_order(str(mo["id"]))

    def oil(v: str) -> GoodsMovement:
        return GoodsMovement(items=[GoodsMovementItem(material="RM-OIL", quantity=q(v, "LTR"), movement_type="261")])

    first = await c.goods_movement(order, oil("1.5"), key="c1", retry=False)
    second = await c.goods_movement(order, oil("2.25"), key="c2", retry=False)
    replay = await c.goods_movement(order, oil("2.25"), key="c2", retry=True)  # the answer to c2 was lost
    assert not first.replayed and not second.replayed and replay.replayed
    [move] = [m for m in records(server, "stock.move")
              if m.get("raw_material_production_id") == mo["id"] and m["product_uom"] == 3]
    assert move["quantity"] == 3.75 and move["picked"]
    lines = [r for r in records(server, "stock.move.line") if r["move_id"] == move["id"]]
    assert sorted(r["quantity"] for r in lines) == [1.5, 2.25]
    ids = Counter((r["model"], r["res_id"]) for r in records(server, "ir.model.data")
                  if r["module"] == "__plantbridge__")
    assert sorted(ids) == sorted(("stock.move.line", r["id"]) for r in lines) and max(ids.values()) == 1
    await c.aclose()
