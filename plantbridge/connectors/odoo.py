"""Odoo as the plant's ERP: the mapping of plantbridge's commands onto Odoo MRP (contract §9).

``mrp.production`` -> order (number = the MO's database id, its name in the description);
``mrp.workorder`` (by sequence) -> operations 0010, 0020, ...; raw ``stock.move`` -> components.

Exactly once: every record plantbridge creates carries an external id ``__plantbridge__.<kind>_<key>``
in ``ir.model.data``, created in the same transaction as the record with ``load(["id", ...])`` and
looked up before posting again. Actions on existing records (start, finish, validate, mark done) read
the record's state first; quantities are written as absolute values derived from Odoo's own records.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from plantbridge.canonical.commands import (
    CompleteOrder,
    ConfirmOperation,
    GoodsMovement,
    GoodsMovementItem,
    GoodsReceipt,
    MaintenanceNotification,
    StepResult,
    UsageDecision,
)
from plantbridge.canonical.fields import Quantity
from plantbridge.canonical.order import Component, Operation, ProductionOrder
from plantbridge.connectors.errors import BusinessRejection, OrderNotFound
from plantbridge.connectors.odoo_rpc import SYSTEM, OdooRpc
from plantbridge.connectors.ports import CommandDispatch

PREFIX = "__plantbridge__"
# Odoo's default uom names -> UN/ECE Rec. 20 (a plant's xref.units adds or overrides).
ODOO_UNITS = {"Units": "H87", "Unit": "H87", "Dozens": "DZN", "kg": "KGM", "g": "GRM", "t": "TNE", "L": "LTR",
              "ml": "MLT", "m": "MTR", "cm": "CMT", "mm": "MMT", "km": "KMT", "m²": "MTK", "m³": "MTQ",
              "Hours": "HUR", "Days": "DAY", "lb": "LBR"}
PRIORITY = {1: "3", 2: "2", 3: "1", 4: "0"}  # plantbridge 1 = very high; Odoo "3" = very high
MO_FIELDS = ["name", "origin", "product_id", "product_qty", "product_uom_id", "state", "date_start",
             "date_deadline", "workorder_ids", "move_raw_ids", "write_date"]


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _num(value: Decimal | float) -> str:
    return format(Decimal(str(value)).normalize(), "f")


class OdooConnector(CommandDispatch):
    def __init__(self, rpc: OdooRpc, *, plant: str, units: dict[str, str] | None = None,
                 backorder: bool = False, losses: dict[str, str] | None = None) -> None:
        self.rpc = rpc
        self.plant = plant
        self.units = {**ODOO_UNITS, **(units or {})}
        self.backorder = backorder
        self.losses = losses or {}

    async def aclose(self) -> None:
        await self.rpc.aclose()

    # --- reading -----------------------------------------------------------------------------

    def unit(self, uom: Any) -> str:
        name = uom[1] if isinstance(uom, list) else str(uom)
        if name not in self.units:
            raise BusinessRejection(f"Odoo unit {name!r} has no UN/ECE code: add it to the plant's xref.units",
                                    system=SYSTEM, code="PB/UNIT")
        return self.units[name]

    async def _mo(self, number: str) -> dict[str, Any]:
        if not number.isdigit():
            raise OrderNotFound(f"Odoo manufacturing orders are numbered by their id; {number!r} is not one")
        rows = await self.rpc.call("mrp.production", "search_read", domain=[["id", "=", int(number)]],
                                   fields=MO_FIELDS)
        if not rows:
            raise OrderNotFound(f"Odoo has no manufacturing order with id {number}")
        return dict(rows[0])

    async def _workorders(self, mo: dict[str, Any]) -> list[dict[str, Any]]:
        rows = await self.rpc.call("mrp.workorder", "read", list(mo["workorder_ids"]),
                                   fields=["name", "workcenter_id", "state", "qty_production", "product_uom_id"])
        return sorted(rows, key=lambda r: int(r["id"]))

    async def _workorder(self, mo: dict[str, Any], operation: str) -> dict[str, Any]:
        wos = await self._workorders(mo)
        index = int(operation) // 10 - 1
        if not 0 <= index < len(wos):
            raise BusinessRejection(f"{mo['name']} has no work order for operation {operation}", system=SYSTEM,
                                    code="PB/OPERATION")
        return wos[index]

    async def read_order(self, number: str) -> ProductionOrder:
        mo = await self._mo(number)
        wos = await self._workorders(mo)
        centers = {r["id"]: r["code"] or r["name"] for r in await self.rpc.call(
            "mrp.workcenter", "read", sorted({w["workcenter_id"][0] for w in wos}), fields=["code", "name"])}
        moves = await self.rpc.call("stock.move", "read", list(mo["move_raw_ids"]),
                                    fields=["product_id", "product_uom_qty", "product_uom", "workorder_id", "state"])
        product_ids = sorted({mo["product_id"][0], *(m["product_id"][0] for m in moves)})
        codes = {r["id"]: r["default_code"] or f"product-{r['id']}" for r in await self.rpc.call(
            "product.product", "read", product_ids, fields=["default_code"])}
        ops = [Operation(number=f"{(i + 1) * 10:04d}", work_center=str(centers[w["workcenter_id"][0]]),
                         control_key="ODOO", description=str(w["name"])[:200],
                         planned_qty=Quantity(quantity=Decimal(str(w["qty_production"] or mo["product_qty"])),
                                              uom=self.unit(mo["product_uom_id"])))
               for i, w in enumerate(wos)]
        op_of = {w["id"]: f"{(i + 1) * 10:04d}" for i, w in enumerate(wos)}
        components = [Component(item=f"{(i + 1) * 10:04d}", material=codes[m["product_id"][0]],
                                quantity=Quantity(quantity=Decimal(str(m["product_uom_qty"])),
                                                  uom=self.unit(m["product_uom"])),
                                operation=op_of.get(m["workorder_id"][0]) if m["workorder_id"] else None)
                      for i, m in enumerate(moves) if m["state"] != "cancel"]
        start = str(mo["date_start"] or "")[:10] or None
        return ProductionOrder(
            number=str(mo["id"]), plant=self.plant, material=codes[mo["product_id"][0]],
            description=f"{mo['name']}" + (f" ({mo['origin']})" if mo.get("origin") else ""),
            quantity=Quantity(quantity=Decimal(str(mo["product_qty"])), uom=self.unit(mo["product_uom_id"])),
            order_type="MO", start_date=start, released=mo["state"] in ("confirmed", "progress", "to_close"),
            erp_system="odoo", operations=ops or [Operation(number="0010", work_center="ODOO", planned_qty=Quantity(
                quantity=Decimal(str(mo["product_qty"])), uom=self.unit(mo["product_uom_id"])))],
            components=components,
            # write_date (UTC, whole seconds) as YYYYMMDDhhmmss: the version order changes compare (issue 14).
            version="".join(ch for ch in str(mo.get("write_date") or "") if ch.isdigit())[:14] or None)

    # --- exactly once ------------------------------------------------------------------------

    async def _bound(self, name: str) -> int | None:
        rows = await self.rpc.call("ir.model.data", "search_read", domain=[["module", "=", PREFIX],
                                                                          ["name", "=", name]], fields=["res_id"])
        return int(rows[0]["res_id"]) if rows else None

    async def _load_once(self, model: str, name: str, fields: list[str], row: list[Any]) -> tuple[int, bool]:
        """Create the record with its external id in one transaction unless it exists: (id, replayed)."""
        found = await self._bound(name)
        if found is not None:
            return found, True
        result = await self.rpc.call(model, "load", fields=["id", *fields], data=[[f"{PREFIX}.{name}", *row]])
        if not result.get("ids"):
            text = "; ".join(str(m.get("message")) for m in result.get("messages") or []) or "load failed"
            if "duplicate key" in text:  # an earlier attempt created it meanwhile
                again = await self._bound(name)
                if again is not None:
                    return again, True
            raise BusinessRejection(text[:1000], system=SYSTEM, code="ValidationError")
        return int(result["ids"][0]), False

    # --- postings ----------------------------------------------------------------------------

    async def confirm_operation(
        self, order: ProductionOrder, cmd: ConfirmOperation, *, key: str, retry: bool
    ) -> StepResult:
        mo = await self._mo(order.number)
        if mo["state"] in ("done", "cancel"):
            raise BusinessRejection(f"{mo['name']} is {mo['state']}: no confirmation possible", system=SYSTEM,
                                    code="UserError")
        wo = await self._workorder(mo, cmd.operation)
        if wo["state"] not in ("progress", "done", "cancel"):
            await self.rpc.call("mrp.workorder", "button_start", [wo["id"]])  # returns None in 18/19
        minutes = Decimal(0)
        if cmd.activities is not None:
            minutes = cmd.activities.machine_min or cmd.activities.labor_min or cmd.activities.setup_min
        end = datetime.now(UTC)
        text = f"plantbridge confirmation {cmd.operation}: yield {_num(cmd.yield_qty.quantity)}"
        log_id, replayed = await self._load_once(
            "mrp.workcenter.productivity", f"conf_{key}",
            ["workcenter_id/.id", "workorder_id/.id", "loss_id/id", "date_start", "date_end", "description"],
            [str(wo["workcenter_id"][0]), str(wo["id"]), "mrp.block_reason7", _ts(end - timedelta(minutes=float(
                minutes))), _ts(end), text])
        docs = [f"mrp.workcenter.productivity {log_id}"]
        # Absolute good quantity: the largest operation total of all plantbridge confirmation records.
        logs = await self.rpc.call("mrp.workcenter.productivity", "search_read", domain=[
            ["workorder_id", "in", list(mo["workorder_ids"])], ["description", "=like", "plantbridge confirmation %"]],
            fields=["description"])
        per_op: dict[str, Decimal] = {}
        for r in logs:
            op_text, _, qty_text = str(r["description"]).removeprefix("plantbridge confirmation ").partition(": yield ")
            per_op[op_text] = per_op.get(op_text, Decimal(0)) + Decimal(qty_text)
        total = per_op.get(cmd.operation, Decimal(0))
        target = max(per_op.values(), default=Decimal(0))
        [current] = await self.rpc.call("mrp.production", "read", [mo["id"]], fields=["qty_producing", "state"])
        if current["state"] not in ("done", "cancel") and Decimal(str(current["qty_producing"])) != target:
            await self.rpc.call("mrp.production", "write", [mo["id"]], vals={"qty_producing": float(target)})
            await self.rpc.call("mrp.production", "set_qty_producing", [mo["id"]])  # None: committed
        if cmd.scrap_qty is not None and cmd.scrap_qty.quantity > 0:
            docs.append(await self._scrap(mo, f"cscrap_{key}", mo["product_id"][0], cmd.scrap_qty.quantity, wo["id"]))
        if cmd.final:
            wo_now = await self.rpc.call("mrp.workorder", "read", [wo["id"]], fields=["state"])
            if wo_now[0]["state"] not in ("done", "cancel"):
                await self.rpc.call("mrp.workorder", "button_finish", [wo["id"]])
        return StepResult(documents=docs, message=f"{mo['name']} {wo['name']}: {_num(total)} produced",
                          replayed=replayed)

    async def _scrap(self, mo: dict[str, Any], name: str, product_id: int, qty: Decimal, wo_id: int | None) -> str:
        fields = ["production_id/.id", "product_id/.id", "scrap_qty"]
        row = [str(mo["id"]), str(product_id), _num(qty)]
        if wo_id is not None:
            fields.append("workorder_id/.id")
            row.append(str(wo_id))
        scrap_id, _ = await self._load_once("stock.scrap", name, fields, row)
        [scrap] = await self.rpc.call("stock.scrap", "read", [scrap_id], fields=["state", "name"])
        if scrap["state"] == "draft":
            answer = await self.rpc.call("stock.scrap", "action_validate", [scrap_id])
            if isinstance(answer, dict):  # stock.warn.insufficient.qty.scrap: the plant scrapped it, so do it
                await self.rpc.call("stock.scrap", "do_scrap", [scrap_id])
        return f"stock.scrap {scrap_id}"

    async def _product(self, code: str) -> int:
        ids = await self.rpc.call("product.product", "search", domain=[["default_code", "=", code]], limit=1)
        if not ids:
            raise BusinessRejection(f"Odoo has no product with internal reference {code!r}", system=SYSTEM,
                                    code="MissingError")
        return int(ids[0])

    async def _consume(self, mo: dict[str, Any], item: GoodsMovementItem, name: str) -> tuple[str, bool]:
        """One consumption = one ``stock.move.line`` under its own external id; the raw move's quantity is
        then written as the absolute sum of plantbridge's lines (two events add up, a replay changes nothing)."""
        product = await self._product(item.material)
        moves = await self.rpc.call("stock.move", "search_read", domain=[
            ["raw_material_production_id", "=", mo["id"]], ["product_id", "=", product],
            ["state", "not in", ["done", "cancel"]]], fields=["product_uom", "quantity"])
        if not moves:
            raise BusinessRejection(f"{mo['name']} has no open component move for {item.material}", system=SYSTEM,
                                    code="UserError")
        move = moves[0]
        if self.unit(move["product_uom"]) != item.quantity.uom:
            raise BusinessRejection(f"{item.material}: unit {item.quantity.uom} differs from Odoo's "
                                    f"{move['product_uom'][1]}", system=SYSTEM, code="PB/UNIT")
        line_id, replayed = await self._load_once("stock.move.line", name, [
            "move_id/.id", "product_id/.id", "quantity"], [str(move["id"]), str(product), _num(item.quantity.quantity)])
        [current] = await self.rpc.call("stock.move", "read", [move["id"]], fields=["move_line_ids", "quantity"])
        bound = await self.rpc.call("ir.model.data", "search_read", domain=[
            ["module", "=", PREFIX], ["model", "=", "stock.move.line"],
            ["res_id", "in", list(current["move_line_ids"])]],
            fields=["res_id"])
        lines = await self.rpc.call("stock.move.line", "read", sorted({int(r["res_id"]) for r in bound}),
                                    fields=["quantity"])
        total = sum((Decimal(str(r["quantity"])) for r in lines), Decimal(0))
        if Decimal(str(current["quantity"])) != total or not replayed:
            await self.rpc.call("stock.move", "write", [move["id"]], vals={"quantity": float(total), "picked": True},
                                context={"force_manual_consumption": True})
        return f"stock.move {move['id']} (line {line_id}, {_num(total)} consumed)", replayed

    async def goods_movement(
        self, order: ProductionOrder, cmd: GoodsMovement, *, key: str, retry: bool
    ) -> StepResult:
        mo = await self._mo(order.number)
        docs = []
        replays = []
        for i, item in enumerate(cmd.items):
            if item.movement_type == "261":
                doc, again = await self._consume(mo, item, f"cons_{key}_{i}")
                docs.append(doc)
                replays.append(again)
            elif item.movement_type == "551":
                docs.append(await self._scrap(mo, f"scrap_{key}_{i}", await self._product(item.material),
                                              item.quantity.quantity, None))
            else:
                raise BusinessRejection(f"movement type {item.movement_type} has no Odoo mapping", system=SYSTEM,
                                        code="PB/MOVEMENT")
        return StepResult(documents=docs, message=mo["name"], replayed=bool(replays) and all(replays))

    async def goods_receipt(
        self, order: ProductionOrder, cmd: GoodsReceipt, *, key: str, retry: bool
    ) -> StepResult:
        """Odoo posts the finished goods at mark done: the received quantity becomes the MO's qty_producing."""
        mo = await self._mo(order.number)
        [cur] = await self.rpc.call("mrp.production", "read", [mo["id"]], fields=["qty_producing", "state"])
        if cur["state"] not in ("done", "cancel") and Decimal(str(cur["qty_producing"])) != cmd.quantity.quantity:
            await self.rpc.call("mrp.production", "write", [mo["id"]],
                                vals={"qty_producing": float(cmd.quantity.quantity)})
            await self.rpc.call("mrp.production", "set_qty_producing", [mo["id"]])
        return StepResult(documents=[f"mrp.production {mo['id']}"], message=f"{mo['name']}: "
                          f"{_num(cmd.quantity.quantity)} to receive at mark done", replayed=cur["state"] == "done")

    async def complete_order(
        self, order: ProductionOrder, cmd: CompleteOrder, *, key: str, retry: bool
    ) -> StepResult:
        mo = await self._mo(order.number)
        context: dict[str, Any] = {"skip_consumption": True, "skip_backorder": True, "skip_redirection": True}
        if self.backorder:
            context["mo_ids_to_backorder"] = [mo["id"]]
        for _ in range(3):
            [cur] = await self.rpc.call("mrp.production", "read", [mo["id"]], fields=["state", "name"])
            if cur["state"] == "done":
                return StepResult(documents=[f"mrp.production {mo['id']}"], message=f"{cur['name']} done",
                                  replayed=_ > 0 or retry)
            if cur["state"] in ("cancel", "draft"):
                raise BusinessRejection(f"{cur['name']} is {cur['state']}: it cannot be marked done", system=SYSTEM,
                                        code="UserError")
            answer = await self.rpc.call("mrp.production", "button_mark_done", [mo["id"]], context=context)
            if isinstance(answer, dict) and answer.get("res_model") not in (None, "mrp.production"):
                raise BusinessRejection(f"{cur['name']}: Odoo asks {answer.get('res_model')} "
                                        f"({answer.get('name')}) - answer it in Odoo", system=SYSTEM,
                                        code="Wizard")
        raise BusinessRejection(f"{mo['name']} is not done after mark done", system=SYSTEM, code="UserError")

    async def usage_decision(
        self, order: ProductionOrder, cmd: UsageDecision, *, key: str, retry: bool
    ) -> StepResult:
        # Odoo Community has no quality model (OCA qc.inspection is not configured here): recorded plant-side.
        return StepResult(documents=[], message=f"usage decision {cmd.decision} recorded plant-side "
                          "(Odoo Community has no quality inspection model)")

    async def maintenance_notification(
        self, order: ProductionOrder, cmd: MaintenanceNotification, *, key: str, retry: bool
    ) -> StepResult:
        fields = ["name", "description", "priority", "maintenance_type", "stage_id/id", "maintenance_team_id/id"]
        row = [cmd.description[:100] or f"Maintenance {cmd.equipment}",
               f"{cmd.description}\nWork center: {cmd.work_center or '-'}; order {order.number}",
               PRIORITY.get(cmd.priority, "1"), "corrective", "maintenance.stage_0",
               "maintenance.equipment_team_maintenance"]
        equipment = await self.rpc.call("maintenance.equipment", "search", domain=[
            "|", ["serial_no", "=", cmd.equipment], ["name", "=", cmd.equipment]], limit=1)
        if equipment:
            fields.append("equipment_id/.id")
            row.append(str(equipment[0]))
        rid, replayed = await self._load_once("maintenance.request", f"mreq_{key}", fields, row)
        return StepResult(documents=[f"maintenance.request {rid}"], replayed=replayed)

    async def downtime(self, work_center: str, start: datetime, end: datetime, reason: str | None, *,
                       key: str, workorder: int | None = None) -> StepResult:
        """A closed downtime as ``mrp.workcenter.productivity`` with the mapped loss (both dates: never blocks)."""
        centers = await self.rpc.call("mrp.workcenter", "search", domain=[["code", "=", work_center]], limit=1)
        if not centers:
            raise BusinessRejection(f"Odoo has no work center with code {work_center!r}", system=SYSTEM,
                                    code="MissingError")
        loss = self.losses.get(reason or "", "mrp.block_reason1")
        fields = ["workcenter_id/.id", "loss_id/id", "date_start", "date_end", "description"]
        row = [str(centers[0]), loss, _ts(start), _ts(end), f"plantbridge downtime: {reason or '-'}"]
        if workorder is not None:
            fields.append("workorder_id/.id")
            row.append(str(workorder))
        rid, replayed = await self._load_once("mrp.workcenter.productivity", f"dt_{key}", fields, row)
        return StepResult(documents=[f"mrp.workcenter.productivity {rid}"], replayed=replayed)

    async def confirmed_since(self, cursor: str | None) -> list[dict[str, Any]]:
        """Confirmed/in-progress MOs written at or after ``cursor`` (``YYYY-MM-DD HH:MM:SS``), oldest first.

        At or after: write_date has whole seconds, so a later write in the cursor's second is not missed
        (the caller's starts are idempotent, so seeing the cursor's own MO again costs nothing)."""
        domain: list[Any] = [["state", "in", ["confirmed", "progress"]]]
        if cursor:
            domain.append(["write_date", ">=", cursor])
        rows = await self.rpc.call("mrp.production", "search_read", domain=domain, fields=["name", "write_date"],
                                   order="write_date asc")
        return list(rows)
