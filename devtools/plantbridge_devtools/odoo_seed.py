"""The Odoo side of the dev landscape: a small JSON-2 client (Odoo 19's external API, as an integrator's
script calls it) and the master data an Odoo plant of `plantbridge dev` needs.

Seeding goes through Odoo's own API, not the simulator's back door: per work center of the plant file an
``mrp.workcenter`` with that code, and a ``maintenance.equipment`` with the work center's code as serial
number (so a maintenance request from the MES finds its equipment). Idempotent: what exists is kept.
Products and manufacturing orders come from the demo (the simulator's ``POST /admin/productions``).
"""

from __future__ import annotations

from typing import Any

import httpx


class OdooApiError(RuntimeError):
    """Odoo answered a JSON-2 call with an error (its exception name and message)."""


class OdooApi:
    def __init__(self, url: str, database: str, api_key: str, *, timeout_s: float = 15.0) -> None:
        self.url = url.rstrip("/")
        self.http = httpx.AsyncClient(timeout=timeout_s, headers={
            "Authorization": f"bearer {api_key}", "X-Odoo-Database": database})

    async def call(self, model: str, method: str, **named: Any) -> Any:
        """``POST /json/2/<model>/<method>`` with named arguments; an error status raises with Odoo's text."""
        response = await self.http.post(f"{self.url}/json/2/{model}/{method}", json=named)
        if response.status_code != 200:
            try:
                body = response.json()
                text = f"{body.get('name')}: {body.get('message')}"
            except ValueError:
                text = response.text[:200]
            raise OdooApiError(f"{model}.{method} answered {response.status_code}: {text}")
        return response.json()

    async def admin(self, method: str, path: str, body: Any = None) -> Any:
        """The simulator's admin API (not Odoo's): settings, productions, state."""
        response = await self.http.request(method, f"{self.url}/admin/{path}", json=body)
        response.raise_for_status()
        return response.json() if response.content else None

    async def aclose(self) -> None:
        await self.http.aclose()


async def seed_plant(api: OdooApi, plant: dict[str, Any]) -> dict[str, int]:
    """Work centers and equipment of one Odoo plant file (a parsed YAML mapping): code -> work center id."""
    centers: dict[str, int] = {}
    for wc in plant.get("work_centers") or []:
        code, name = str(wc["code"]), str(wc.get("name") or wc["code"])
        found = await api.call("mrp.workcenter", "search", domain=[["code", "=", code]], limit=1)
        if found:
            centers[code] = int(found[0])
        else:
            [created] = await api.call("mrp.workcenter", "create", vals_list=[{
                "name": name, "code": code, "working_state": "normal", "active": True}])
            centers[code] = int(created)
        if not await api.call("maintenance.equipment", "search", domain=[["serial_no", "=", code]], limit=1):
            await api.call("maintenance.equipment", "create", vals_list=[{"name": name, "serial_no": code}])
    return centers
