"""Master data the check reads beyond the MES: an Odoo plant's work centers and the WMS's locations.

- Odoo: every active `mrp.workcenter` with a code, through the plant's own ERP connection (JSON-2 or
  JSON-RPC, the API key from the plant file's `api_key_env`), as the order connector reads them.
- WMS: the location master of a REST WMS, `GET /wms/api/locations` (`{"items": [{"location", "type"}]}`).

Each returns None when the plant's system is of another kind (SAP has no catalogue read here; a
reference WMS has no location master).
"""

from __future__ import annotations

import os

import httpx

from plantbridge.canonical.plant_config import PlantConfig
from plantbridge.connectors.odoo_rpc import OdooRpc


async def read_odoo_work_centers(cfg: PlantConfig) -> set[str] | None:
    """The codes of the plant's Odoo work centers (`mrp.workcenter`), None for a plant not on Odoo."""
    erp = cfg.erp
    if erp.kind != "odoo" or not erp.url or not erp.database or not erp.login:
        return None
    rpc = OdooRpc(erp.url, database=erp.database, login=erp.login, timeout=erp.timeout_s,
                  api=erp.api or ("json2" if erp.version == "19.0" else "jsonrpc"),
                  api_key=os.environ.get(erp.api_key_env, "") if erp.api_key_env else "")
    try:
        rows = await rpc.call("mrp.workcenter", "search_read", domain=[["active", "=", True]], fields=["code"])
    finally:
        await rpc.aclose()
    return {str(r["code"]) for r in rows if r.get("code")}


async def read_wms_locations(cfg: PlantConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> set[str] | None:
    """The WMS's location codes, None when the plant's WMS is not a REST WMS."""
    if cfg.wms.kind != "rest" or not cfg.wms.url:
        return None
    key = os.environ.get(cfg.wms.api_key_env, "") if cfg.wms.api_key_env else ""
    async with httpx.AsyncClient(base_url=cfg.wms.url.rstrip("/"), timeout=cfg.wms.timeout_s, transport=transport,
                                 headers={"X-API-Key": key, "Accept": "application/json"}) as http:
        resp = await http.get("/wms/api/locations")
        resp.raise_for_status()
        return {str(i["location"]) for i in resp.json()["items"]}
