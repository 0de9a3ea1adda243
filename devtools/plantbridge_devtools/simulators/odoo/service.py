"""``object.execute_kw`` in one place: generic ORM methods, business methods, rights, one transaction.

``Service.call(uid, model, method, args, kwargs)`` is what all three protocols end in. It runs in
one SQLite transaction (rolled back on error) and returns Odoo's value (``None`` included: the
protocol layer renders it as each API does). MOs confirmed in the call are returned for the
webhook, which is sent after the commit.
"""

from __future__ import annotations

from typing import Any

from plantbridge_devtools.simulators.common.state import SqliteState
from plantbridge_devtools.simulators.odoo.methods import Methods
from plantbridge_devtools.simulators.odoo.orm import AccessError, Env, UserError, ValidationError

MODEL_LABELS = {"stock.scrap": "Scrap", "mrp.production": "Production Order", "mrp.workorder": "Work Order",
                "stock.move": "Stock Move", "maintenance.request": "Maintenance Request",
                "mrp.workcenter.productivity": "Workcenter Productivity Log", "ir.model.data": "Model Data"}
GROUPS = {"stock.scrap": "Inventory/User", "maintenance.request": "Maintenance/Equipment Manager"}
PUBLIC = {
    "mrp.production": {"action_confirm", "button_mark_done", "set_qty_producing", "action_start", "action_cancel",
                       "button_plan", "action_assign"},
    "mrp.workorder": {"button_start", "button_pending", "button_finish"},
    "stock.scrap": {"action_validate", "do_scrap"},
    "mrp.workcenter": {"unblock"},
    "ir.model.data": {"check_object_reference"},
}
DUP_KEYS = {"stock.scrap": ("production_id", "product_id", "scrap_qty", "origin"),
            "mrp.workcenter.productivity": ("workcenter_id", "loss_id", "date_start", "description"),
            "maintenance.request": ("name", "equipment_id")}


class Service:
    def __init__(self, state: SqliteState, version: str) -> None:
        self.state = state
        self.version = version

    def settings(self) -> dict[str, Any]:
        return dict(self.state.get_setting("sim", {}) or {})

    def call(self, uid: int, model: str, method: str, args: list[Any], kwargs: dict[str, Any]) -> tuple[Any, list[int]]:
        if method.startswith("_") or method == "init":
            raise AccessError(f"Private methods (such as '{model}.{method}') cannot be called remotely.")
        webhooks: list[int] = []
        with self.state.transaction():
            env = Env(self.state, self.version)
            env.uid = uid
            env.context = dict(kwargs.pop("context", None) or {})
            env.model_fields(model)
            result = self._dispatch(env, Methods(env, webhooks), model, method, list(args), kwargs)
        return result, webhooks

    def _check_rights(self, model: str, operation: str) -> None:
        denied = self.settings().get("denied", {})
        if operation in denied.get(model, []):
            label = MODEL_LABELS.get(model, model)
            group = GROUPS.get(model, "Manufacturing/User")
            raise AccessError(f"You are not allowed to {'modify' if operation == 'write' else operation} "
                              f"'{label}' ({model}) records.\n\nThis operation is allowed for the following "
                              f"groups:\n\t- {group}\n\nContact your administrator to request access if necessary.")

    def _dispatch(self, env: Env, m: Methods, model: str, method: str, args: list[Any], kw: dict[str, Any]) -> Any:
        def arg(i: int, name: str, default: Any = None) -> Any:
            return args[i] if len(args) > i else kw.get(name, default)

        if method == "fields_get":
            return env.fields_get(model, arg(0, "allfields"), arg(1, "attributes"))
        if method in ("search", "search_count", "search_read"):
            self._check_rights(model, "read")
            domain = arg(0, "domain", [])
            if method == "search_count":
                return len(env.search(model, domain, limit=arg(1, "limit")))
            if method == "search":
                return env.search(model, domain, arg(1, "offset", 0), arg(2, "limit"), arg(3, "order"))
            ids = env.search(model, domain, kw.get("offset", 0), kw.get("limit"), kw.get("order"))
            return env.read(model, ids, arg(1, "fields"))
        if method == "read":
            self._check_rights(model, "read")
            return env.read(model, list(arg(0, "ids", [])), arg(1, "fields"), kw.get("load", "_classic_read"))
        if method == "create":
            self._check_rights(model, "create")
            vals = arg(0, "vals_list", arg(0, "vals"))
            many = isinstance(vals, list)
            ids = [self.create(env, m, model, v) for v in (vals if many else [vals])]
            return ids if many else ids[0]
        if method == "write":
            self._check_rights(model, "write")
            return self.write(env, m, model, list(arg(0, "ids", [])), dict(arg(1, "vals", {})))
        if method == "load":
            self._check_rights(model, "create")
            return self.load(env, m, model, list(arg(0, "fields", [])), list(arg(1, "data", [])))
        if method == "check_object_reference" and model == "ir.model.data":
            found = env.xmlid(f"{arg(0, 'module')}.{arg(1, 'xml_id')}")
            if found is None:
                raise ValueError(f"External ID not found in the system: {arg(0, 'module')}.{arg(1, 'xml_id')}")
            return list(found)
        if method not in PUBLIC.get(model, set()):
            if self.version == "17.0":
                raise AttributeError(f"The method '{method}' does not exist on the model '{model}'")
            raise AttributeError(f"The method '{model}.{method}' does not exist")
        self._check_rights(model, "write")
        ids = list(arg(0, "ids", []))
        if method in ("button_plan", "action_assign"):
            env.browse(model, ids)
            return True
        return getattr(m, method)(ids)

    # --- create / write with the models' own rules ----------------------------------------

    def create(self, env: Env, m: Methods, model: str, vals: dict[str, Any]) -> int:
        vals = dict(vals)
        if model == "stock.scrap":
            vals = m.scrap_defaults(vals)
        elif model == "mrp.workcenter.productivity":
            vals = m.productivity_defaults(vals)
        elif model == "stock.move.line":
            vals = m.move_line_defaults(vals)
        elif model == "maintenance.request":
            if not vals.get("name"):
                raise ValidationError("The operation cannot be completed: Missing required value for the field "
                                      "'Subjects' (name).\nModel: maintenance.request, Field: name")
            vals = m.request_defaults(vals)
        elif model == "ir.model.data":
            complete = f"{vals.get('module')}.{vals.get('name')}"
            if env.xmlid(complete) is not None:
                raise ValidationError('The operation cannot be completed: duplicate key value violates unique '
                                      'constraint "ir_model_data_module_name_uniq_index"')
        if model in DUP_KEYS and self.settings().get("refuse_duplicates"):
            key = tuple(vals.get(k) for k in DUP_KEYS[model])
            if any(tuple(r.get(k) for k in DUP_KEYS[model]) == key for r in env.all(model)):
                raise ValidationError(f"A {MODEL_LABELS.get(model, model)} with the same values already exists.")
        rid = env.create(model, vals)
        if model == "mrp.workcenter.productivity":
            m.workcenter_state(int(vals["workcenter_id"]))
        if model == "stock.move.line":
            m.move_quantity_from_lines(int(vals["move_id"]))
        return rid

    def write(self, env: Env, m: Methods, model: str, ids: list[int], vals: dict[str, Any]) -> bool:
        if model == "mrp.workorder":
            return m.write_workorder(ids, vals)
        if model == "stock.move":
            return m.write_move(ids, vals)
        if model == "maintenance.request":
            vals = m.request_stage(vals)
        if model == "mrp.production":
            for mo in env.browse(model, ids):
                if mo.get("state") in ("done", "cancel") and set(vals) & {"qty_producing", "product_qty"}:
                    raise UserError("You cannot modify a manufacturing order that is done or cancelled.")  # [I]
        env.write(model, ids, vals)
        if model == "mrp.production" and "qty_producing" in vals:
            for rid in ids:
                m.mo_recompute(rid)
        if model == "mrp.workcenter.productivity":
            for rec in env.browse(model, ids):
                m.workcenter_state(int(rec["workcenter_id"]))
        return True

    def load(self, env: Env, m: Methods, model: str, fields: list[str], data: list[list[Any]]) -> dict[str, Any]:
        """Import rows; an ``id`` column is an external id: bound record updated, else created + bound."""
        env.state.db.execute("SAVEPOINT sim_load")
        ids: list[int] = []
        try:
            for row in data:
                vals: dict[str, Any] = {}
                xmlid = None
                for name, raw in zip(fields, row, strict=False):
                    if name == "id":
                        xmlid = str(raw) if raw else None
                        continue
                    if name.endswith("/id"):
                        target = env.xmlid(str(raw))
                        if target is None:
                            raise ValueError(f"No matching record found for external id '{raw}' in field "
                                             f"'{name[:-3]}'")
                        vals[name[:-3]] = target[1]
                    elif name.endswith("/.id"):
                        vals[name[:-4]] = int(raw)
                    else:
                        vals[name] = self._convert(env, model, name, raw)
                bound = env.xmlid(xmlid) if xmlid else None
                if bound is not None:
                    self.write(env, m, model, [bound[1]], vals)
                    ids.append(bound[1])
                else:
                    rid = self.create(env, m, model, vals)
                    if xmlid:
                        env.bind_xmlid(xmlid, model, rid)
                    ids.append(rid)
        except (UserError, ValueError, KeyError) as err:
            env.state.db.execute("ROLLBACK TO sim_load")
            env.state.db.execute("RELEASE sim_load")
            message = getattr(err, "message", str(err))
            return {"ids": False, "messages": [{"type": "error", "message": message, "record": len(ids),
                                                "rows": {"from": len(ids), "to": len(ids)}}], "nextrow": 0}
        env.state.db.execute("RELEASE sim_load")
        return {"ids": ids, "messages": [], "nextrow": 0}

    @staticmethod
    def _convert(env: Env, model: str, name: str, raw: Any) -> Any:
        ftype = env.field_type(model, name)
        if raw in ("", None):
            return False
        if ftype in ("float", "monetary"):
            return float(raw)
        if ftype == "integer":
            return int(raw)
        if ftype == "boolean":
            return str(raw).lower() in ("1", "true", "yes")
        if ftype == "many2one":
            comodel = env.model_fields(model)[name]["comodel"]
            hits = [r["id"] for r in env.all(comodel) if r.get("name") == raw]
            if not hits:
                raise ValueError(f"No matching record found for name '{raw}' in field '{name}'")
            return hits[0]
        return raw
