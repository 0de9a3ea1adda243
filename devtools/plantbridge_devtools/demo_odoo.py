"""The demo's count of what Odoo itself holds for this run's manufacturing orders, read through Odoo's
JSON-2 API (as an auditor's script would): MOs by state, the records plantbridge created, and the two
exactly-once checks: no record carries two ``__plantbridge__`` external ids, and no record plantbridge
created carries none.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from plantbridge_devtools.odoo_seed import OdooApi

PREFIX = "__plantbridge__"
ORDER_IN_REQUEST = re.compile(r"order (\d+)\s*$")


@dataclass
class OdooCount:
    mos: Counter[str] = field(default_factory=Counter)  # state -> number of this run's MOs
    records: Counter[str] = field(default_factory=Counter)  # what plantbridge created, by kind
    doubled: list[str] = field(default_factory=list)  # "model id" carrying two or more __plantbridge__ ids
    unbound: list[str] = field(default_factory=list)  # "model id" created by plantbridge without one
    not_done: list[str] = field(default_factory=list)  # MOs expected done that are not


async def count_odoo(api: OdooApi, expected: dict[int, str]) -> OdooCount:
    """`expected`: MO id -> the demo's expected end ("posted" -> the MO is done in Odoo)."""
    out = OdooCount()
    ids = sorted(expected)
    if not ids:
        return out
    mos = await api.call("mrp.production", "read", ids=ids, fields=["state", "name", "workorder_ids"])
    for mo in mos:
        out.mos[str(mo["state"])] += 1
        if expected.get(int(mo["id"])) == "posted" and mo["state"] != "done":
            out.not_done.append(f"{mo['name']} (id {mo['id']}) is {mo['state']}")
    workorders = sorted({int(w) for mo in mos for w in mo["workorder_ids"]})
    bound = await api.call("ir.model.data", "search_read", domain=[["module", "=", PREFIX]],
                           fields=["model", "res_id", "name"])
    per_record = Counter((str(r["model"]), int(r["res_id"])) for r in bound)
    out.doubled = [f"{model} {rid}" for (model, rid), n in sorted(per_record.items()) if n > 1]
    created: list[tuple[str, int, str]] = []  # (model, id, kind)
    for log in await api.call("mrp.workcenter.productivity", "search_read", domain=[
            ["workorder_id", "in", workorders], ["description", "=like", "plantbridge%"]], fields=["description"]):
        kind = "work center time (confirmations)" if "confirmation" in str(log["description"]) else "downtimes"
        created.append(("mrp.workcenter.productivity", int(log["id"]), kind))
    for scrap_id in await api.call("stock.scrap", "search", domain=[["production_id", "in", ids]]):
        created.append(("stock.scrap", int(scrap_id), "scraps"))
    wanted = {str(i) for i in ids}
    for req in await api.call("maintenance.request", "search_read", domain=[], fields=["description"]):
        match = ORDER_IN_REQUEST.search(str(req.get("description") or ""))
        if match and match.group(1) in wanted:
            created.append(("maintenance.request", int(req["id"]), "maintenance requests"))
    for model, rid, kind in created:
        out.records[kind] += 1
        if (model, rid) not in per_record:
            out.unbound.append(f"{model} {rid}")
    return out
