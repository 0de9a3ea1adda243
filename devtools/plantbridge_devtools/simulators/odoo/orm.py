"""A tiny ORM in Odoo's manner over the simulators' SQLite document store.

Records are documents ``(kind=<model>, key=<id>)``. Fields come from ``contract_slice.json`` for the
version played (plus the magic fields), so writing a field the contract does not have fails like
Odoo does (``ValueError: Invalid field``). One2many fields are computed from their inverse many2one.
Every RPC call runs in one SQLite transaction: an error rolls the whole call back, as in Odoo.
"""

from __future__ import annotations

import fnmatch
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from plantbridge_devtools.simulators.common.state import SqliteState

SLICE = json.loads(Path(__file__).with_name("contract_slice.json").read_text())
MAGIC = {"id": "integer", "display_name": "char", "create_date": "datetime", "write_date": "datetime",
         "create_uid": "many2one", "write_uid": "many2one"}
# Models the contract names only as relations; served with the few fields the integration reads.
AUX: dict[str, dict[str, dict[str, Any]]] = {
    "product.product": {"name": {"type": "char", "required": True}, "default_code": {"type": "char"},
                        "uom_id": {"type": "many2one", "comodel": "uom.uom"},
                        "qty_available": {"type": "float", "readonly": True}},
    "uom.uom": {"name": {"type": "char", "required": True}},
    "stock.location": {"name": {"type": "char", "required": True}},
    "res.users": {"name": {"type": "char"}, "login": {"type": "char"}},
}
ONE2MANY = {  # (model, field) -> (comodel, inverse many2one)
    ("mrp.production", "workorder_ids"): ("mrp.workorder", "production_id"),
    ("mrp.production", "move_raw_ids"): ("stock.move", "raw_material_production_id"),
    ("mrp.production", "move_finished_ids"): ("stock.move", "production_id"),
    ("mrp.production", "scrap_ids"): ("stock.scrap", "production_id"),
    ("mrp.workorder", "time_ids"): ("mrp.workcenter.productivity", "workorder_id"),
    ("mrp.workorder", "move_raw_ids"): ("stock.move", "workorder_id"),
    ("mrp.workorder", "scrap_ids"): ("stock.scrap", "workorder_id"),
    ("mrp.workcenter", "time_ids"): ("mrp.workcenter.productivity", "workcenter_id"),
    ("stock.scrap", "move_ids"): ("stock.move", "scrap_id"),
    ("stock.picking", "move_ids"): ("stock.move", "picking_id"),
    ("stock.move", "move_line_ids"): ("stock.move.line", "move_id"),
}
# Required fields without a default (the rest of the contract's required fields have defaults/computes).
REQUIRED = {"mrp.production": ("product_id",), "mrp.workorder": ("production_id", "workcenter_id"),
            "stock.scrap": ("product_id",), "mrp.workcenter.productivity": ("workcenter_id", "loss_id"),
            "maintenance.request": ("name",), "stock.move": ("product_id",), "mrp.workcenter": ("name",),
            "stock.move.line": ("move_id",)}
RELATED = {("mrp.workorder", "qty_producing"): ("production_id", "qty_producing"),
           ("mrp.workorder", "production_state"): ("production_id", "state"),
           ("mrp.workorder", "working_state"): ("workcenter_id", "working_state")}
NAME_FIELD = {"ir.model.data": "complete_name", "stock.move": "reference"}


class OdooError(Exception):
    """An exception as Odoo raises it: qualified class name, message, JSON-2 HTTP status, XML-RPC fault."""

    name = "odoo.exceptions.UserError"
    status = 422
    fault = 2

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UserError(OdooError):
    pass


class ValidationError(UserError):
    name = "odoo.exceptions.ValidationError"


class MissingError(UserError):
    name, status = "odoo.exceptions.MissingError", 404


class AccessError(UserError):
    name, status, fault = "odoo.exceptions.AccessError", 403, 4


class AccessDenied(UserError):
    name, status, fault = "odoo.exceptions.AccessDenied", 403, 3

    def __init__(self, message: str = "Access Denied") -> None:
        super().__init__(message)


class LockError(UserError):  # 19.0
    name, status, fault = "odoo.exceptions.LockError", 409, 1


class ServerError(OdooError):
    """Anything else: Fault 1 / JSON-RPC error / JSON-2 500, named by its Python class."""

    status, fault = 500, 1

    def __init__(self, name: str, message: str, status: int = 500) -> None:
        super().__init__(message)
        self.name = name
        self.status = status


def now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _like(value: Any, pattern: Any, *, ilike: bool, wrap: bool) -> bool:
    text = "" if value in (False, None) else str(value)
    pat = str(pattern).replace("%", "*").replace("_", "?")
    if wrap:
        pat = f"*{pat}*"
    return fnmatch.fnmatchcase(text.lower(), pat.lower()) if ilike else fnmatch.fnmatchcase(text, pat)


def _cmp(value: Any, op: str, arg: Any) -> bool:
    if isinstance(value, list) and op in ("=", "!=", "in", "not in") and value and isinstance(value[0], int):
        hit = bool(set(value) & set(arg if isinstance(arg, list | tuple) else [arg]))
        return hit if op in ("=", "in") else not hit
    if op == "=":
        return value == arg or (arg is False and value in (None, False, [])) or (value is False and arg is None)
    if op == "!=":
        return not _cmp(value, "=", arg)
    if op == "in":
        return value in list(arg)
    if op == "not in":
        return value not in list(arg)
    if op in ("like", "ilike", "not like", "not ilike"):
        hit = _like(value, arg, ilike="ilike" in op, wrap=True)
        return not hit if op.startswith("not") else hit
    if op in ("=like", "=ilike"):
        return _like(value, arg, ilike=op == "=ilike", wrap=False)
    if value in (False, None) or arg in (False, None):
        return False
    if op == "<":
        return bool(value < arg)
    if op == ">":
        return bool(value > arg)
    if op == "<=":
        return bool(value <= arg)
    if op == ">=":
        return bool(value >= arg)
    raise ValueError(f"Invalid leaf operator {op!r}")


class Env:
    """The database of one simulated Odoo: models, records, the user of the current call."""

    def __init__(self, state: SqliteState, version: str) -> None:
        self.state = state
        self.version = version
        self.uid = 2
        self.context: dict[str, Any] = {}
        self.fields: dict[str, dict[str, dict[str, Any]]] = {
            **{m: dict(f) for m, f in SLICE["versions"][version].items()}, **AUX}

    # --- schema ---------------------------------------------------------------------------

    def model_fields(self, model: str) -> dict[str, dict[str, Any]]:
        if model not in self.fields:
            raise UserError(f"Object {model} doesn't exist")
        return self.fields[model]

    def field_type(self, model: str, name: str) -> str:
        if name in MAGIC:
            return MAGIC[name]
        spec = self.model_fields(model).get(name)
        if spec is None:
            raise ValueError(f"Invalid field {name!r} on model {model!r}")
        return str(spec["type"])

    def fields_get(self, model: str, allfields: list[str] | None = None,
                   attributes: list[str] | None = None) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        specs = {**{k: {"type": t} for k, t in MAGIC.items()}, **self.model_fields(model)}
        for name, spec in specs.items():
            if allfields and name not in allfields:
                continue
            desc: dict[str, Any] = {"type": spec["type"], "string": spec.get("string", name),
                                    "required": bool(spec.get("required", False)),
                                    "readonly": bool(spec.get("readonly", name in MAGIC))}
            if spec["type"] == "selection":
                desc["selection"] = [[v, v] for v in spec.get("selection", [])]
            if spec.get("comodel"):
                desc["relation"] = spec["comodel"]
            out[name] = {k: v for k, v in desc.items() if not attributes or k in attributes}
        return out

    # --- records --------------------------------------------------------------------------

    def get(self, model: str, rid: int) -> dict[str, Any] | None:
        return self.state.get(model, str(rid))

    def browse(self, model: str, ids: list[int]) -> list[dict[str, Any]]:
        recs = []
        for rid in ids:
            rec = self.get(model, rid)
            if rec is None:
                raise MissingError("Record does not exist or has been deleted.\n"
                                   f"(Record: {model}({rid},), User: {self.uid})")
            recs.append(rec)
        return recs

    def all(self, model: str) -> list[dict[str, Any]]:
        self.model_fields(model)
        return self.state.all(model)

    def _clean(self, model: str, vals: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in vals.items():
            ftype = self.field_type(model, name)
            if name in MAGIC:
                raise ValueError(f"Invalid field {name!r} on model {model!r}")
            if ftype in ("one2many", "many2many") and isinstance(value, list):
                if (model, name) in ONE2MANY:
                    continue  # commands on inverse-computed one2many are applied by the caller
                ids: list[int] = []
                for cmd in value:
                    if isinstance(cmd, list | tuple) and cmd and cmd[0] == 6:
                        ids = list(cmd[2])
                    elif isinstance(cmd, list | tuple) and cmd and cmd[0] == 4:
                        ids.append(int(cmd[1]))
                    elif isinstance(cmd, int):
                        ids.append(cmd)
                value = ids
            elif ftype == "selection" and value not in (False, None):
                allowed = self.model_fields(model)[name].get("selection") or []
                if allowed and value not in allowed:
                    raise ValueError(f"Wrong value for {model}.{name}: {value!r}")
            elif ftype == "float" and value not in (False, None):
                value = float(value)
            elif ftype == "many2one" and value not in (False, None):
                value = int(value)
            out[name] = value
        return out

    def create(self, model: str, vals: dict[str, Any]) -> int:
        clean = self._clean(model, vals)
        fields = self.model_fields(model)
        for name in REQUIRED.get(model, ()):
            if clean.get(name) in (None, False, "") and name in fields:
                label = fields[name].get("string", name)
                raise ValidationError(f"The operation cannot be completed: Missing required value for the "
                                      f"field '{label}' ({name}).\nModel: {model}, Field: {name}")
        rid = self.state.next_number(f"id:{model}")
        stamp = now_text()
        rec = {"id": rid, **clean, "create_uid": self.uid, "write_uid": self.uid, "create_date": stamp,
               "write_date": stamp}
        self.state.put(model, str(rid), rec)
        return rid

    def write(self, model: str, ids: list[int], vals: dict[str, Any]) -> bool:
        clean = self._clean(model, vals)
        for rec in self.browse(model, ids):
            rec.update(clean)
            rec["write_uid"] = self.uid
            rec["write_date"] = now_text()
            self.state.put(model, str(rec["id"]), rec)
        return True

    def value(self, model: str, rec: dict[str, Any], name: str) -> Any:
        if (model, name) in ONE2MANY:
            comodel, inverse = ONE2MANY[(model, name)]
            return [r["id"] for r in self.all(comodel) if r.get(inverse) == rec["id"]]
        if name == "display_name":
            return self.display_name(model, rec)
        if (model, name) in RELATED:
            via, target = RELATED[(model, name)]
            other = self.get(self.model_fields(model)[via]["comodel"], rec.get(via) or 0)
            return other.get(target, False) if other else False
        if name == "complete_name" and model == "ir.model.data":
            return f"{rec.get('module')}.{rec.get('name')}"
        ftype = self.field_type(model, name)
        default: Any = {"float": 0.0, "integer": 0, "one2many": [], "many2many": []}.get(ftype, False)
        value = rec.get(name, default)
        return default if value is None else value

    def display_name(self, model: str, rec: dict[str, Any]) -> str:
        name = rec.get(NAME_FIELD.get(model, "name"))
        return str(name) if name not in (None, False) else f"{model},{rec['id']}"

    def read(self, model: str, ids: list[int], fields: list[str] | None = None,
             load: str | None = "_classic_read") -> list[dict[str, Any]]:
        names = fields or [n for n in ("id", *self.model_fields(model), *MAGIC) if n != "id"]
        out = []
        for rec in self.browse(model, ids):
            row: dict[str, Any] = {"id": rec["id"]}
            for name in names:
                if name == "id":
                    continue
                value = self.value(model, rec, name)
                ftype = self.field_type(model, name)
                if ftype == "many2one" and value and load == "_classic_read":
                    comodel = MAGIC_M2O.get(name) or self.model_fields(model)[name].get("comodel", "")
                    other = self.get(comodel, value) if comodel in self.fields else None
                    value = [value, self.display_name(comodel, other) if other else f"{comodel},{value}"]
                row[name] = value
            out.append(row)
        return out

    # --- search ---------------------------------------------------------------------------

    def _leaf(self, model: str, rec: dict[str, Any], leaf: list[Any]) -> bool:
        path, op, arg = leaf
        if op == "child_of":
            op = "in" if isinstance(arg, list) else "="
        head, _, rest = str(path).partition(".")
        value = rec["id"] if head == "id" else self.value(model, rec, head)
        if rest:
            comodel = self.model_fields(model)[head].get("comodel", "")
            ids = value if isinstance(value, list) else ([value] if value else [])
            return any(self._leaf(comodel, sub, [rest, op, arg]) for sub in self.browse(comodel, ids))
        return _cmp(value, op, arg)

    def _match(self, model: str, rec: dict[str, Any], domain: list[Any]) -> bool:
        stack: list[bool] = []
        for item in reversed(domain):
            if item == "&" or item == "|":
                a, b = stack.pop(), stack.pop()
                stack.append((a and b) if item == "&" else (a or b))
            elif item == "!":
                stack.append(not stack.pop())
            elif isinstance(item, list | tuple) and len(item) == 3:
                stack.append(self._leaf(model, rec, list(item)))
            else:
                raise ValueError(f"Invalid domain term {item!r}")
        return all(stack)

    def search(self, model: str, domain: list[Any] | None = None, offset: int = 0, limit: int | None = None,
               order: str | None = None) -> list[int]:
        recs = [r for r in self.all(model) if self._match(model, r, list(domain or []))]
        if order:
            for part in reversed([p.strip() for p in order.split(",") if p.strip()]):
                name, _, direction = part.partition(" ")
                recs.sort(key=lambda r, n=name:  # type: ignore[misc]
                           str(r.get(n) or "") if not isinstance(r.get(n), int | float)
                          else f"{r.get(n):020.6f}", reverse=direction.lower() == "desc")
        ids = [r["id"] for r in recs][offset:]
        return ids[:limit] if limit else ids

    # --- external ids ---------------------------------------------------------------------

    def xmlid(self, complete: str) -> tuple[str, int] | None:
        module, _, name = complete.partition(".") if "." in complete else ("__import__", "", complete)
        for rec in self.all("ir.model.data"):
            if rec.get("module") == module and rec.get("name") == name:
                return str(rec["model"]), int(rec["res_id"])
        return None

    def bind_xmlid(self, complete: str, model: str, res_id: int) -> None:
        module, _, name = complete.partition(".") if "." in complete else ("__import__", "", complete)
        if any(r.get("module") == module and r.get("name") == name for r in self.all("ir.model.data")):
            raise ValidationError('The operation cannot be completed: duplicate key value violates unique '
                                  'constraint "ir_model_data_module_name_uniq_index"')
        self.create("ir.model.data", {"module": module, "name": name, "model": model, "res_id": res_id,
                                      "noupdate": False})


MAGIC_M2O = {"create_uid": "res.users", "write_uid": "res.users"}
