"""Master-data check: the plant file's cross-references against what the MES and the ERP know now.

Before a code causes an exception, report it per plant:
- `unmapped`: a system uses a code the plant file does not map (an MES resource, unit or reason
  code without an `xref` entry; a work center of a released ERP order that no MES resource maps to
  and that is missing from the plant's `work_centers`);
- `stale`: the plant file maps a code the system no longer knows (an `xref` key the MES does not list).

Beside the MES: an Odoo plant's whole work-center list (`mrp.workcenter` codes, read through Odoo's
API): a code there in neither `work_centers` nor `xref.work_centers` values is `unmapped`, a work
center of the plant file Odoo does not have is `stale` (SAP plants: only the work centers of released
orders are known, so only `unmapped` is judged there). And the WMS's location master: an
`xref.locations` target the WMS does not know is `stale` (a WMS location no ERP code maps to is fine).

`compare` is pure; `read_mes` asks the MES's REST API for its lists (`GET /api/v2/resources`,
`/units`, `/reason-codes`); the ERP's work centers are those of the running order sagas (their
`WorkCenter` search attribute), read by the activity; `masterdata_sources.py` reads Odoo and the WMS.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field

from plantbridge.canonical.plant_config import PlantConfig

Kind = Literal["work_center", "unit", "reason", "location"]
Problem = Literal["unmapped", "stale"]


class Finding(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Kind
    code: str
    problem: Problem
    system: Literal["mes", "erp", "wms"]
    detail: str


class MasterDataReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plant: str
    checked_at: datetime
    mes_checked: bool = False
    erp_work_centers: list[str] = Field(default_factory=list)
    # The ERP's whole work-center list was read (an Odoo plant's mrp.workcenter), and the WMS's locations.
    erp_catalogue_checked: bool = False
    wms_checked: bool = False
    error: str | None = None
    findings: list[Finding] = Field(default_factory=list)
    written: str | None = None
    new: bool = False  # the report was not in the export target yet (a repeat of the same findings is not)

    def content_hash(self) -> str:
        body = {"plant": self.plant, "findings": [f.model_dump() for f in self.findings], "error": self.error}
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class MesLists:
    resources: frozenset[str]
    units: frozenset[str]
    reasons: frozenset[str]


def compare(cfg: PlantConfig, mes: MesLists | None, erp_work_centers: set[str], *,
            erp_catalogue: set[str] | None = None, wms_locations: set[str] | None = None) -> list[Finding]:
    """Unmapped and stale codes of the plant, sorted. `erp_catalogue`: every work center the ERP has
    (Odoo), None when unknown (SAP); `wms_locations`: the WMS's location master, None when not read."""
    out: set[Finding] = set(_catalogue_findings(cfg, erp_catalogue) if erp_catalogue is not None else ())
    if wms_locations is not None:
        for code in sorted(set(cfg.xref.locations.values()) - wms_locations):
            keys = ", ".join(sorted(k for k, v in cfg.xref.locations.items() if v == code))
            out.add(Finding(kind="location", code=code, problem="stale", system="wms",
                            detail=f"xref.locations maps {keys} -> {code}, the WMS does not know location {code}"))
    x = cfg.xref
    known_wcs = {wc.code for wc in cfg.work_centers}
    if mes is not None:
        for r in sorted(mes.resources - set(x.work_centers) - known_wcs):
            out.add(Finding(kind="work_center", code=r, problem="unmapped", system="mes",
                            detail=f"MES resource {r} has no xref.work_centers entry"))
        for r in sorted(set(x.work_centers) - mes.resources):
            out.add(Finding(kind="work_center", code=r, problem="stale", system="mes",
                            detail=f"xref.work_centers maps {r} -> {x.work_centers[r]}, the MES does not know {r}"))
        for u in sorted(mes.units - set(x.units)):
            out.add(Finding(kind="unit", code=u, problem="unmapped", system="mes",
                            detail=f"MES unit {u} has no xref.units entry (UN/ECE code)"))
        for u in sorted(set(x.units) - mes.units):
            out.add(Finding(kind="unit", code=u, problem="stale", system="mes",
                            detail=f"xref.units maps {u}, the MES does not know {u}"))
        for c in sorted(mes.reasons - set(x.reasons)):
            out.add(Finding(kind="reason", code=c, problem="unmapped", system="mes",
                            detail=f"MES reason code {c} has no xref.reasons entry"))
        for c in sorted(set(x.reasons) - mes.reasons):
            out.add(Finding(kind="reason", code=c, problem="stale", system="mes",
                            detail=f"xref.reasons maps {c}, the MES does not know {c}"))
    mapped_erp = set(x.work_centers.values())
    for wc in sorted(erp_work_centers):
        reachable = wc in mapped_erp or (mes is not None and wc in mes.resources)
        if not reachable:
            out.add(Finding(kind="work_center", code=wc, problem="unmapped", system="erp",
                            detail=f"released orders use ERP work center {wc}; no MES resource maps to it"))
        elif known_wcs and wc not in known_wcs:
            out.add(Finding(kind="work_center", code=wc, problem="unmapped", system="erp",
                            detail=f"ERP work center {wc} is missing from the plant file's work_centers"))
    return sorted(out, key=lambda f: (f.kind, f.problem, f.system, f.code))


def _catalogue_findings(cfg: PlantConfig, catalogue: set[str]) -> list[Finding]:
    named = {wc.code for wc in cfg.work_centers} | set(cfg.xref.work_centers.values())
    found = [Finding(kind="work_center", code=wc, problem="unmapped", system="erp",
                     detail=f"the ERP has work center {wc}; it is in neither the plant file's work_centers nor "
                            f"xref.work_centers")
             for wc in sorted(catalogue - named)]
    found += [Finding(kind="work_center", code=wc, problem="stale", system="erp",
                      detail=f"the plant file names work center {wc}; the ERP has none with that code")
              for wc in sorted(named - catalogue)]
    return found


async def read_mes(cfg: PlantConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> MesLists | None:
    """The MES's resources, units and reason codes; None when the plant's MES is not a REST MES."""
    if cfg.mes.kind != "rest" or not cfg.mes.url:
        return None
    key = os.environ.get(cfg.mes.api_key_env, "") if cfg.mes.api_key_env else ""
    async with httpx.AsyncClient(base_url=cfg.mes.url.rstrip("/"), timeout=cfg.mes.timeout_s, transport=transport,
                                 headers={"X-API-Key": key, "Accept": "application/json"}) as http:
        lists = []
        for path in ("/api/v2/resources", "/api/v2/units", "/api/v2/reason-codes"):
            resp = await http.get(path)
            resp.raise_for_status()
            lists.append(frozenset(str(i["code"]) for i in resp.json()["items"]))
    return MesLists(resources=lists[0], units=lists[1], reasons=lists[2])
