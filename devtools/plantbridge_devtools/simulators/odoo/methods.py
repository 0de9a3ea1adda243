"""The business methods the integration calls, with Odoo's guards, error texts and return values.

Return values follow the contract per version: ``True``, ``None`` (which XML-RPC cannot marshal), or
an action dict (a wizard the caller must answer by context). See NOTES.md §3-§5 of the contract.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from plantbridge_devtools.simulators.odoo.orm import Env, UserError, ValidationError, now_text

PRODUCTIVE = ("productive", "performance")


def _wizard(res_model: str, name: str, context: dict[str, Any], res_id: int | bool = False) -> dict[str, Any]:
    return {"type": "ir.actions.act_window", "name": name, "res_model": res_model, "view_mode": "form",
            "views": [[False, "form"]], "target": "new", "res_id": res_id, "context": context}


def _minutes(start: str, end: str) -> float:
    fmt = "%Y-%m-%d %H:%M:%S"
    begin = datetime.strptime(start[:19], fmt).replace(tzinfo=UTC)
    delta = datetime.strptime(end[:19], fmt).replace(tzinfo=UTC) - begin
    return round(delta.total_seconds() / 60, 2)


class Methods:
    def __init__(self, env: Env, webhooks: list[int]) -> None:
        self.env = env
        self.v = env.version
        self.webhooks = webhooks  # MO ids confirmed in this call (sent after commit)

    def _none_or_true(self, since_18: bool = True) -> bool | None:
        return None if since_18 and self.v != "17.0" else True

    # --- mrp.production -------------------------------------------------------------------

    def mo_recompute(self, mo_id: int) -> None:
        env = self.env
        [mo] = env.browse("mrp.production", [mo_id])
        if mo.get("state") in ("draft", "done", "cancel"):
            return
        wos = env.browse("mrp.workorder", env.value("mrp.production", mo, "workorder_ids"))
        raws = env.browse("stock.move", env.value("mrp.production", mo, "move_raw_ids"))
        qty_producing = float(mo.get("qty_producing") or 0)
        if (wos and all(w.get("state") in ("done", "cancel") for w in wos)) or (
                not wos and qty_producing >= float(mo["product_qty"])):
            state = "to_close"
        elif any(w.get("state") in ("progress", "done") for w in wos) or qty_producing or any(
                m.get("picked") for m in raws):
            state = "progress"
        else:
            state = "confirmed"
        if state != mo["state"]:
            env.write("mrp.production", [mo_id], {"state": state})

    def action_confirm(self, ids: list[int]) -> bool:
        env = self.env
        for mo in env.browse("mrp.production", ids):
            if mo.get("state") != "draft":
                continue
            env.write("mrp.production", [mo["id"]], {"state": "confirmed", "reservation_state": "assigned"})
            for move_id in env.value("mrp.production", mo, "move_raw_ids") + env.value(
                    "mrp.production", mo, "move_finished_ids"):
                env.write("stock.move", [move_id], {"state": "assigned"})
            for wo_id in env.value("mrp.production", mo, "workorder_ids"):
                env.write("mrp.workorder", [wo_id], {"state": "ready"})
            self.webhooks.append(mo["id"])
        return True

    def set_qty_producing(self, ids: list[int]) -> None:
        env = self.env
        [mo] = env.browse("mrp.production", ids)
        produced = float(mo.get("qty_produced") or 0)
        todo = float(mo.get("qty_producing") or 0) - produced
        for move in env.browse("stock.move", env.value("mrp.production", mo, "move_raw_ids")):
            if move.get("state") in ("done", "cancel") or (move.get("picked") and move.get("manual_consumption")):
                continue
            vals: dict[str, Any] = {"quantity": round(todo * float(move.get("unit_factor") or 0), 6)}
            if not move.get("manual_consumption"):
                vals["picked"] = True
            env.write("stock.move", [move["id"]], vals)
        self.mo_recompute(mo["id"])
        return None

    def action_start(self, ids: list[int]) -> None:
        if self.v == "17.0":
            raise AttributeError("The method 'action_start' does not exist on the model 'mrp.production'")
        for mo in self.env.browse("mrp.production", ids):
            if mo.get("state") == "confirmed":
                self.env.write("mrp.production", [mo["id"]], {"state": "progress"})
        return None

    def action_cancel(self, ids: list[int]) -> bool:
        env = self.env
        for mo in env.browse("mrp.production", ids):
            if mo.get("state") == "done":
                raise UserError("You cannot cancel a manufacturing order that is done.")  # [I] wording
            for wo_id in env.value("mrp.production", mo, "workorder_ids"):
                env.write("mrp.workorder", [wo_id], {"state": "cancel"})
            for move_id in env.value("mrp.production", mo, "move_raw_ids") + env.value(
                    "mrp.production", mo, "move_finished_ids"):
                env.write("stock.move", [move_id], {"state": "cancel"})
            env.write("mrp.production", [mo["id"]], {"state": "cancel"})
        return True

    def button_mark_done(self, ids: list[int]) -> Any:
        env, ctx = self.env, self.env.context
        backorders: list[int] = []
        for mo in env.browse("mrp.production", ids):
            if mo["state"] in ("draft", "cancel"):
                raise UserError(f"You cannot produce a manufacturing order that is not confirmed ({mo['name']}).")
            if mo["state"] == "done":
                continue
            qty = float(mo["product_qty"])
            if not float(mo.get("qty_producing") or 0):
                env.write("mrp.production", [mo["id"]], {"qty_producing": qty - float(mo.get("qty_produced") or 0)})
                self.set_qty_producing([mo["id"]])
                [mo] = env.browse("mrp.production", [mo["id"]])
            producing = float(mo["qty_producing"])
            raws = env.browse("stock.move", env.value("mrp.production", mo, "move_raw_ids"))
            if mo.get("consumption", "flexible") != "flexible" and not ctx.get("skip_consumption"):
                off = [m for m in raws if m.get("state") not in ("done", "cancel") and abs(
                    float(m.get("quantity") or 0) * (1 if m.get("picked") else 0)
                    - producing * float(m.get("unit_factor") or 0)) > 1e-6]
                if off:
                    return _wizard("mrp.consumption.warning", "Component Consumption Warning",
                                   {"default_mrp_production_ids": [mo["id"]]})
            if producing < qty and not ctx.get("skip_backorder"):
                return _wizard("mrp.production.backorder", "You produced less than initially planned",
                               {"default_mrp_production_ids": [mo["id"]]})
            if producing < qty and mo["id"] in (ctx.get("mo_ids_to_backorder") or []):
                backorders.append(self._backorder(mo, qty - producing))
            for wo in env.browse("mrp.workorder", env.value("mrp.production", mo, "workorder_ids")):
                self._finish(wo)
            for move in raws:
                if move.get("state") in ("done", "cancel"):
                    continue
                env.write("stock.move", [move["id"]], {"state": "done" if move.get("picked") else "cancel"})
            for move_id in env.value("mrp.production", mo, "move_finished_ids"):
                env.write("stock.move", [move_id], {"state": "done", "quantity": producing, "picked": True})
            env.write("mrp.production", [mo["id"]], {
                "state": "done", "date_finished": now_text(), "is_locked": True, "qty_produced": producing,
                "product_qty": producing})
        if backorders and not ctx.get("skip_redirection"):
            return {"type": "ir.actions.act_window", "res_model": "mrp.production", "views": [[False, "form"]],
                    "res_id": backorders[0], "target": "main"}
        return True

    def _backorder(self, mo: dict[str, Any], rest: float) -> int:
        env = self.env
        seq = int(mo.get("backorder_sequence") or 1) + 1
        vals = {k: mo[k] for k in ("product_id", "product_uom_id", "origin", "consumption", "picking_type_id",
                                   "location_src_id", "location_dest_id") if mo.get(k) is not None}
        bo = env.create("mrp.production", {**vals, "name": f"{str(mo['name']).split('-')[0]}-{seq:03d}",
                                           "product_qty": rest, "state": "confirmed", "backorder_sequence": seq,
                                           "date_start": now_text(), "company_id": 1})
        env.write("mrp.production", [mo["id"]], {"backorder_sequence": max(1, int(mo.get("backorder_sequence") or 1))})
        return bo

    # --- mrp.workorder --------------------------------------------------------------------

    def _open_logs(self, wo_id: int, *, user: int | None = None) -> list[dict[str, Any]]:
        return [r for r in self.env.all("mrp.workcenter.productivity")
                if r.get("workorder_id") == wo_id and not r.get("date_end") and (user is None or r["user_id"] == user)]

    def button_start(self, ids: list[int]) -> bool | None:
        env = self.env
        for wo in env.browse("mrp.workorder", ids):
            [wc] = env.browse("mrp.workcenter", [wo["workcenter_id"]])
            if wc.get("working_state") == "blocked":
                raise UserError("Please unblock the work center to start the work order.")
            if wo["state"] in ("done", "cancel"):
                if self.v == "17.0":
                    continue
                raise UserError("You cannot start a work order that is already done or cancelled")
            if self._open_logs(wo["id"], user=env.uid):
                continue
            env.create("mrp.workcenter.productivity", {
                "workcenter_id": wo["workcenter_id"], "workorder_id": wo["id"],
                "loss_id": self.loss("mrp.block_reason7"),
                "loss_type": "productive", "date_start": now_text(), "user_id": env.uid, "company_id": 1,
                "description": "Time Tracking: Administrator"})
            vals: dict[str, Any] = {"state": "progress"}
            if not wo.get("date_start"):
                vals["date_start"] = now_text()
            env.write("mrp.workorder", [wo["id"]], vals)
            [mo] = env.browse("mrp.production", [wo["production_id"]])
            if not float(mo.get("qty_producing") or 0):
                env.write("mrp.production", [mo["id"]], {
                    "qty_producing": float(mo["product_qty"]) - float(mo.get("qty_produced") or 0)})
                self.set_qty_producing([mo["id"]])
            self.mo_recompute(mo["id"])
        return self._none_or_true()

    def button_pending(self, ids: list[int]) -> bool | None:
        for wo_id in ids:
            self._close_logs(self._open_logs(wo_id, user=self.env.uid))
        return self._none_or_true()

    def _close_logs(self, logs: list[dict[str, Any]]) -> None:
        stamp = now_text()
        for log in logs:
            self.env.write("mrp.workcenter.productivity", [log["id"]], {
                "date_end": stamp, "duration": _minutes(log["date_start"], stamp)})
            self.workcenter_state(int(log["workcenter_id"]))

    def _finish(self, wo: dict[str, Any]) -> None:
        env = self.env
        if wo["state"] in ("done", "cancel"):
            return
        self._close_logs(self._open_logs(wo["id"]))
        [mo] = env.browse("mrp.production", [wo["production_id"]])
        produced = float(wo.get("qty_produced") or 0) or float(mo.get("qty_producing") or 0) or float(
            mo["product_qty"])
        env.write("mrp.workorder", [wo["id"]], {"state": "done", "qty_produced": produced,
                                                "date_finished": now_text()})
        if self.v == "19.0":
            for move_id in env.value("mrp.workorder", wo, "move_raw_ids"):
                env.write("stock.move", [move_id], {"picked": True})

    def button_finish(self, ids: list[int]) -> bool:
        for wo in self.env.browse("mrp.workorder", ids):
            self._finish(wo)
            self.mo_recompute(int(wo["production_id"]))
        return True

    def write_workorder(self, ids: list[int], vals: dict[str, Any]) -> bool:
        producing = vals.pop("qty_producing", None)
        if vals:
            self.env.write("mrp.workorder", ids, vals)
        if producing is not None:  # inverse: writes the MO and recomputes its component moves
            for wo in self.env.browse("mrp.workorder", ids):
                self.env.write("mrp.production", [wo["production_id"]], {"qty_producing": float(producing)})
                self.set_qty_producing([int(wo["production_id"])])
        return True

    # --- stock ----------------------------------------------------------------------------

    def write_move(self, ids: list[int], vals: dict[str, Any]) -> bool:
        if self.env.context.get("force_manual_consumption") and "quantity" in vals:
            vals = {**vals, "manual_consumption": True}
            if self.v == "19.0":
                vals.setdefault("picked", True)
        self.env.write("stock.move", ids, vals)
        for move in self.env.browse("stock.move", ids):
            if move.get("raw_material_production_id"):
                self.mo_recompute(int(move["raw_material_production_id"]))
        return True

    def move_line_defaults(self, vals: dict[str, Any]) -> dict[str, Any]:
        """A detailed operation on a move: product, unit and locations from its move (Odoo's computes)."""
        [move] = self.env.browse("stock.move", [int(vals["move_id"])])
        if move.get("state") in ("done", "cancel"):
            raise UserError("You cannot add a detailed operation to a move that is done or cancelled.")  # [I]
        out = {"product_id": move["product_id"], "product_uom_id": move.get("product_uom"),
               "location_id": move.get("location_id"), "location_dest_id": move.get("location_dest_id"),
               "quantity": 0.0, "picked": False, "state": move.get("state"), "reference": move.get("reference"),
               **vals}
        if self.v == "19.0":
            out.pop("workorder_id", None)
            out.pop("production_id", None)
        return out

    def move_quantity_from_lines(self, move_id: int) -> None:
        """``stock.move.quantity`` is computed from its move lines (17.0+): the sum of their quantities."""
        lines = self.env.browse("stock.move.line", self.env.value("stock.move", self.env.browse(
            "stock.move", [move_id])[0], "move_line_ids"))
        vals: dict[str, Any] = {"quantity": sum(float(line.get("quantity") or 0) for line in lines)}
        if any(line.get("picked") for line in lines):
            vals["picked"] = True
        self.write_move([move_id], vals)

    def scrap_defaults(self, vals: dict[str, Any]) -> dict[str, Any]:
        env = self.env
        out = {"state": "draft", "scrap_qty": 1.0, "name": "New", "company_id": 1, **vals}
        if out.get("product_id") and not out.get("product_uom_id"):
            [product] = env.browse("product.product", [int(out["product_id"])])
            out["product_uom_id"] = product.get("uom_id")
        if out.get("production_id"):
            [mo] = env.browse("mrp.production", [int(out["production_id"])])
            out.setdefault("origin", mo["name"])
            out.setdefault("location_id", mo["location_dest_id"] if mo["state"] == "done" else mo["location_src_id"])
        out.setdefault("scrap_location_id", self.ref("stock.stock_location_scrapped"))
        return out

    def action_validate(self, ids: list[int]) -> Any:
        env = self.env
        if len(ids) != 1:
            raise ValueError(f"Expected singleton: stock.scrap{tuple(ids)}")
        [scrap] = env.browse("stock.scrap", ids)
        if float(scrap.get("scrap_qty") or 0) <= 0:
            raise UserError("You can only enter positive quantities.")
        [product] = env.browse("product.product", [scrap["product_id"]])
        if float(product.get("qty_available") or 0) < float(scrap["scrap_qty"]):
            return _wizard("stock.warn.insufficient.qty.scrap", "Insufficient Quantity", {
                "default_product_id": product["id"], "default_location_id": scrap.get("location_id"),
                "default_scrap_id": scrap["id"], "default_quantity": scrap["scrap_qty"],
                "default_product_uom_name": "Units"})
        return self.do_scrap(ids)

    def do_scrap(self, ids: list[int]) -> bool:
        env = self.env
        for scrap in env.browse("stock.scrap", ids):  # no state guard: Odoo scraps twice when called twice
            number = env.state.next_number("seq:stock.scrap")
            [product] = env.browse("product.product", [scrap["product_id"]])
            mo = env.get("mrp.production", scrap["production_id"]) if scrap.get("production_id") else None
            link = ("production_id" if mo and mo.get("product_id") == scrap["product_id"]
                    else "raw_material_production_id")
            move_vals: dict[str, Any] = {
                "product_id": scrap["product_id"], "product_uom": scrap.get("product_uom_id"),
                "product_uom_qty": scrap["scrap_qty"], "quantity": scrap["scrap_qty"], "picked": True,
                "state": "done", "scrap_id": scrap["id"], "location_id": scrap.get("location_id"),
                "location_dest_id": scrap.get("scrap_location_id"), "origin": scrap.get("origin") or False,
                "company_id": 1, "reference": f"SP/{number:05d}"}
            if mo is not None:
                move_vals[link] = mo["id"]
            env.create("stock.move", move_vals)
            env.write("product.product", [product["id"]], {
                "qty_available": float(product.get("qty_available") or 0) - float(scrap["scrap_qty"])})
            env.write("stock.scrap", [scrap["id"]], {"state": "done", "date_done": now_text(),
                                                     "name": f"SP/{number:05d}"})
        return True

    # --- work centers, downtime -----------------------------------------------------------

    def loss(self, xmlid: str) -> int:
        return self.ref(xmlid)

    def ref(self, xmlid: str) -> int:
        found = self.env.xmlid(xmlid)
        if found is None:
            raise ValueError(f"External ID not found in the system: {xmlid}")
        return found[1]

    def productivity_defaults(self, vals: dict[str, Any]) -> dict[str, Any]:
        env = self.env
        out = {"date_start": now_text(), "user_id": env.uid, "company_id": 1, **vals}
        if out.get("loss_id"):
            [loss] = env.browse("mrp.workcenter.productivity.loss", [int(out["loss_id"])])
            out["loss_type"] = loss.get("loss_type")
        if out.get("workorder_id"):
            [wo] = env.browse("mrp.workorder", [int(out["workorder_id"])])
            out["production_id"] = wo["production_id"]
            if not out.get("date_end") and self._open_logs(wo["id"], user=int(out["user_id"])):
                raise ValidationError(f"The Workorder ({wo['name']}) cannot be started twice!")
        if out.get("date_end") and out.get("date_start"):
            out["duration"] = _minutes(str(out["date_start"]), str(out["date_end"]))
        return out

    def workcenter_state(self, wc_id: int) -> None:
        open_logs = [r for r in self.env.all("mrp.workcenter.productivity")
                     if r.get("workcenter_id") == wc_id and not r.get("date_end")]
        state = "normal"
        if open_logs:
            state = "done" if any(r.get("loss_type") in PRODUCTIVE for r in open_logs) else "blocked"
        self.env.write("mrp.workcenter", [wc_id], {"working_state": state})

    def unblock(self, ids: list[int]) -> bool:
        for wc in self.env.browse("mrp.workcenter", ids):
            if wc.get("working_state") != "blocked":
                raise UserError("It has already been unblocked.")
            self._close_logs([r for r in self.env.all("mrp.workcenter.productivity")
                              if r.get("workcenter_id") == wc["id"] and not r.get("date_end")])
        return True

    # --- maintenance ----------------------------------------------------------------------

    def request_defaults(self, vals: dict[str, Any]) -> dict[str, Any]:
        env = self.env
        stages = sorted(env.all("maintenance.stage"), key=lambda s: (s.get("sequence") or 0, s["id"]))
        teams = env.all("maintenance.team")
        out = {"request_date": now_text()[:10], "kanban_state": "normal", "company_id": 1,
               "maintenance_type": "corrective", "priority": "0", **vals}
        if not out.get("stage_id") and stages:
            out["stage_id"] = stages[0]["id"]
        if not out.get("maintenance_team_id") and teams:
            out["maintenance_team_id"] = teams[0]["id"]
        return self.request_stage(out)

    def request_stage(self, vals: dict[str, Any]) -> dict[str, Any]:
        if vals.get("stage_id"):
            [stage] = self.env.browse("maintenance.stage", [int(vals["stage_id"])])
            vals = {**vals, "kanban_state": "normal", "close_date": now_text()[:10] if stage.get("done") else False}
        return vals
