"""The use cases' plant stack: SAP, two MES, QMS and WMS simulators, a worker and the gateway, wired as
production wires them (plant files through the production loader). tests/e2e/test_use_cases.py says
what it holds; `plant_stack(...)` runs it, `PlantStack` is how a test drives and reads it."""


from __future__ import annotations

import contextlib
import itertools
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml
from temporalio.client import Client

from plantbridge.canonical.commands import external_key
from plantbridge.canonical.plant_config import PlantConfig
from plantbridge.canonical.policy import PlantPolicy
from plantbridge.connectors.memory import MemoryStore
from plantbridge.connectors.sap_odata import SapODataConnector
from plantbridge.gateway.app import create_app
from plantbridge.gateway.deps import GatewayDeps
from plantbridge.store import Database
from plantbridge.store.api_keys import ApiKeys
from plantbridge.workers.plants import load_plants
from plantbridge.workers.registry import ConfiguredRegistry, erp_order_source
from plantbridge.workers.worker import build_worker
from plantbridge_devtools.simulators.mes.server import MesServer
from plantbridge_devtools.simulators.qms.server import QmsServer
from plantbridge_devtools.simulators.sap.server import SimulatorServer
from plantbridge_devtools.simulators.wms.server import WmsServer
from tests.support.net import free_port, serve_app
from tests.support.polling import eventually

QUEUE = "plantbridge-use-cases"
A, B = "1710", "1720"  # plant A: pieces; plant B: by weight, other MES codes
ENV = {"PLANTBRIDGE_UC_SAP_PASSWORD": "secret", "PLANTBRIDGE_UC_MES_KEY": "mes-dev-key",
       "PLANTBRIDGE_UC_QMS_KEY": "qms-dev-key", "PLANTBRIDGE_UC_WMS_KEY": "wms-dev-key"}
MES_AUTH = {"X-API-Key": "mes-dev-key"}
QMS_AUTH = {"X-API-Key": "qms-dev-key"}
WMS_AUTH = {"X-API-Key": "wms-dev-key"}
POLICY = {
    "release_start_sla": "PT2M", "hold_sla": "PT2M", "posting_sla": "PT1M", "escalate_after": "PT2M",
    "maintenance_sla": "PT5M", "ack_wait": "PT4S", "activity_timeout": "PT8S", "retry_initial": "PT0.1S",
    "retry_max_interval": "PT0.5S", "long_downtime": "PT30M",
    "partial_confirmations": "immediate", "consumption": "aggregate", "aggregate_every": "PT10M",
    "spare_parts": {"PRESS-01": [{"material": "SEAL-KIT-1", "quantity": 2}]},
}
# Plant -> (MES resource of 0010, of 0020, SAP work center of 0010, of 0020, MES unit, SAP unit, scrap code, SAP reason)
CODES = {A: ("L1-ASSY", "L3-TEST", "ASSY-01", "TEST-01", "PCS", "ST", "S-SCRATCH", "SCR1"),
         B: ("P2-MIX", "P2-BAG", "MIX-20", "PACK-20", "KG", "KG", "S-DIM", "DIM2")}
# A posting event's HTTP answer: decided within the gateway's ack_wait, or 202 with the ERP outcome pending.
DECIDED = ((200, "posted"), (202, "pending"))
T = TypeVar("T")
_seq = itertools.count(1)


def new_number() -> str:
    """Order numbers of this module (workflow ids must not meet other modules' orders in the session)."""
    return str(8_100_000 + (os.getpid() % 900) * 100 + next(_seq))


def plant_file(plant: str, sap: str, mes: str, qms: str, wms: str) -> dict[str, Any]:
    r1, r2, wc1, wc2, _unit, _sap_unit, scrap, reason = CODES[plant]
    systems = {"qms": {"kind": "rest", "url": qms, "api_key_env": "PLANTBRIDGE_UC_QMS_KEY", "timeout_s": 5},
               "wms": {"kind": "rest", "url": wms, "api_key_env": "PLANTBRIDGE_UC_WMS_KEY", "timeout_s": 5},
               "mes": {"kind": "rest", "url": mes, "api_key_env": "PLANTBRIDGE_UC_MES_KEY", "timeout_s": 5}}
    units = {"PCS": "H87", "L": "LTR"} if plant == A else {"KG": "KGM", "G": "GRM"}
    sloc, line = ("0001", "LINE-L1") if plant == A else ("0002", "LINE-L2")
    return {
        "plant": plant, "name": f"use cases {plant}",
        "erp": {"kind": "sap_odata", "url": sap, "user": "PLANTBRIDGE", "password_env": "PLANTBRIDGE_UC_SAP_PASSWORD",
                "timeout_s": 5, "overdelivery_tolerance_pct": 10},
        **systems,
        "work_centers": [{"code": wc1}, {"code": wc2}],
        "xref": {"work_centers": {r1: wc1, r2: wc2},
                 "reasons": {scrap: reason, "S-DENT": "SCR2", "D-MECH": "BRK1"},
                 "units": units,
                 "locations": {sloc: "RM-A01" if plant == A else "RM-B01", wc1: line, "LINE": line,
                               "PROD-OUT": "PROD-OUT", "FG": "FG-01", "QI": "QI-01"}},
        "policy": POLICY,
    }


def dec(value: Any) -> Decimal:
    return Decimal(str(value))


def guid_hex(value: Any) -> str:
    return uuid.UUID(str(value)).hex.upper()


def is_order(row: dict[str, Any], number: str) -> bool:
    return any(isinstance(v, str) and v in (number, number.zfill(12)) for k, v in row.items() if "Order" in k)


@dataclass
class PlantStack:
    client: Client
    reference: MemoryStore
    sap: SimulatorServer
    mes: dict[str, str]
    qms: str
    wms: str
    gateway: str
    plants: dict[str, PlantConfig]
    http: httpx.AsyncClient
    keys: dict[str, str] = field(default_factory=dict)

    # --- SAP --------------------------------------------------------------------------------

    async def sap_admin(self, method: str, path: str, body: Any = None) -> Any:
        response = await self.http.request(method, f"{self.sap.url}/admin/{path}", json=body)
        response.raise_for_status()
        return response.json() if response.content else None

    async def create_order(self, plant: str = A, *, inspection: str | None = None) -> str:
        """Create and release an order in SAP; its Released event starts the saga through the gateway."""
        number = new_number()
        _r1, _r2, wc1, wc2, _unit, sap_unit, _scrap, _reason = CODES[plant]
        if plant == A:
            qty, sloc = "100", "0001"
            components = [
                {"item": "0010", "material": "RM-HOUSING", "quantity": "100", "unit": "ST", "storage_location": sloc,
                 "backflush": True, "operation": "0010"},
                {"item": "0020", "material": "RM-OIL", "quantity": "5", "unit": "L", "storage_location": sloc,
                 "operation": "0020"},
            ]
        else:
            qty, sloc = "500", "0002"
            components = [{"item": "0010", "material": "RM-PA66", "quantity": "500", "unit": "KG",
                           "storage_location": sloc, "backflush": True, "operation": "0010"}]
        await self.sap_admin("POST", "orders", {
            "order": number, "plant": plant, "material": f"FG-{number}", "quantity": qty, "unit": sap_unit,
            "storage_location": sloc, "tolerance_pct": "10", "inspection_lot_origin": inspection, "release": True,
            "operations": [{"operation": "0010", "work_center": wc1, "description": "first"},
                           {"operation": "0020", "work_center": wc2, "description": "second"}],
            "components": components,
        })
        return number

    async def sap_of(self, number: str) -> dict[str, Any]:
        """What SAP holds for this order: confirmations, material documents, lots, decisions, the order."""
        state = await self.sap_admin("GET", "state")
        docs = [d for d in state["material_documents"] if any(is_order(i, number) for i in d.get("items", []))]
        lots = [lot for lot in state["inspection_lots"] if is_order(lot, number)]
        lot_ids = {str(lot["InspectionLot"]) for lot in lots}
        [order] = [o for o in state["orders"] if is_order(o, number)]
        return {"confirmations": [c for c in state["confirmations"] if is_order(c, number)],
                "material_documents": docs, "inspection_lots": lots,
                "usage_decisions": [u for u in state["usage_decisions"] if str(u.get("InspectionLot")) in lot_ids],
                "notifications": state["notifications"], "order": order}

    # --- MES --------------------------------------------------------------------------------

    async def mes_get(self, plant: str, path: str, **params: str) -> Any:
        response = await self.http.get(f"{self.mes[plant]}{path}", params=params, headers=MES_AUTH)
        response.raise_for_status()
        return response.json()

    async def work_order(self, plant: str, number: str) -> dict[str, Any] | None:
        items = (await self.mes_get(plant, "/api/v2/workorders", orderNo=number))["items"]
        return items[-1] if items else None

    async def dispatched(self, plant: str, number: str) -> dict[str, Any]:
        async def check() -> dict[str, Any] | None:
            wo = await self.work_order(plant, number)
            return wo if wo is not None and wo["status"] == "DISPATCHED" else None

        return await eventually(check, what=f"the MES work order of {number}")

    async def run(self, plant: str, number: str, *actions: dict[str, Any]) -> list[str]:
        """Run a shop-floor script in the MES; the ids of the events it raised."""
        response = await self.http.post(f"{self.mes[plant]}/admin/run",
                                        json={"orderNo": number, "actions": list(actions)})
        response.raise_for_status()
        result = response.json()
        assert result["ok"], result["error"]
        events: list[str] = result["events"]
        return events

    async def ack(self, plant: str, event_id: str) -> dict[str, Any] | None:
        items = (await self.mes_get(plant, "/api/v2/acknowledgements", transactionRef=event_id))["items"]
        return items[0] if items else None

    async def acked(self, plant: str, event_id: str, result: str = "OK", revision: int = 1) -> dict[str, Any]:
        async def check() -> dict[str, Any] | None:
            ack = await self.ack(plant, event_id)
            return ack if ack is not None and ack["result"] == result and ack["revision"] >= revision else None

        return await eventually(check, what=f"{result} acknowledgement of {event_id} in the MES")

    async def outbox(self, plant: str, number: str) -> list[dict[str, Any]]:
        response = await self.http.get(f"{self.mes[plant]}/admin/outbox", params={"order": number})
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    async def delivered(self, plant: str, number: str) -> list[dict[str, Any]]:
        """Wait until the MES delivered every event of the order; the outbox rows."""
        async def check() -> list[dict[str, Any]] | None:
            rows = await self.outbox(plant, number)
            refused = [r for r in rows if r["status"] == "rejected"]
            assert not refused, f"the gateway refused MES events: {refused}"
            return rows if rows and all(r["status"] == "delivered" for r in rows) else None

        return await eventually(check, what=f"delivery of the MES events of {number}")

    # --- gateway ----------------------------------------------------------------------------

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}

    async def send(self, who: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """POST one plant event to the gateway as `who` (a plant system)."""
        response = await self.http.post(f"{self.gateway}/v1/plant/events", json=body, headers=self.auth(who))
        return response.status_code, response.json()

    async def supervisor(self, method: str, path: str, body: Any = None) -> Any:
        response = await self.http.request(method, f"{self.gateway}{path}", json=body, headers=self.auth("supervisor"))
        assert response.status_code < 300, response.text
        return response.json()

    async def view(self, plant: str, number: str) -> dict[str, Any]:
        view: dict[str, Any] = await self.supervisor("GET", f"/v1/orders/{plant}/{number}")
        return view

    async def reaches(self, plant: str, number: str, state: str, timeout: float = 30.0) -> dict[str, Any]:
        async def check() -> dict[str, Any] | None:
            view = await self.view(plant, number)
            return view if view["state"] == state else None

        return await eventually(check, timeout, what=f"order {number} {state}")

    async def settled(self, plant: str, number: str) -> dict[str, Any]:
        """No event of the order waits in the MES and no saga step is pending or running."""
        async def check() -> dict[str, Any] | None:
            if any(r["status"] == "pending" for r in await self.outbox(plant, number)):
                return None
            view = await self.view(plant, number)
            steps = view["summary"]["steps"]
            return None if any(s["status"] in ("pending", "running") for s in steps) else view

        return await eventually(check, what=f"order {number} to settle")

    # --- WMS / QMS --------------------------------------------------------------------------

    async def wms_get(self, path: str, **params: str) -> Any:
        response = await self.http.get(f"{self.wms}/wms/api/{path}", params=params, headers=WMS_AUTH)
        response.raise_for_status()
        return response.json()

    async def wms_of(self, collection: str, number: str) -> list[dict[str, Any]]:
        return [d for d in (await self.wms_get(collection))["items"] if d.get("orderRef") == number]

    async def qms_get(self, path: str, **params: str) -> Any:
        response = await self.http.get(f"{self.qms}/qms/v1/{path}", params=params, headers=QMS_AUTH)
        response.raise_for_status()
        return response.json()


def local_event(plant: str, number: str, event_type: str, event_id: str, **fields: Any) -> dict[str, Any]:
    """A plant event as the plant's systems send it: §7 wire format with their own codes."""
    source = fields.pop("source", f"mes-{plant}")
    return {"event_id": event_id, "event_type": event_type, "source": source, "plant": plant, "order": number,
            "occurred_at": datetime.now(UTC).isoformat(), **fields}


def conf_key(plant: str, number: str, event_id: str) -> str:
    """The external key the saga gives the SAP confirmation of a plant event."""
    return external_key(f"production-order:{plant}:{number}:{event_id}:confirm")


@contextlib.asynccontextmanager
async def plant_stack(client: Client, db: Database, reference: MemoryStore, base: Path) -> AsyncIterator[PlantStack]:
    """The use cases' stack (see tests/e2e/test_use_cases.py), running until the block ends."""
    async with contextlib.AsyncExitStack() as stack:
        env = stack.enter_context(pytest.MonkeyPatch.context())
        for name, value in ENV.items():  # the secrets the plant files name
            env.setenv(name, value)
        servers = {A: MesServer(str(base / "mes-1710.db"), plant=A), B: MesServer(str(base / "mes-1720.db"), plant=B),
                   "qms": QmsServer(str(base / "qms.db")), "wms": WmsServer(str(base / "wms.db"))}
        for server in servers.values():
            stack.enter_context(server)
        port = free_port()
        gateway_url = f"http://127.0.0.1:{port}"
        tag = uuid.uuid4().hex[:6]
        roles = {"erp": ("erp", [A, B]), f"mes-{A}": ("plant-system", [A]), f"mes-{B}": ("plant-system", [B]),
                 "qms": ("plant-system", [A, B]), "supervisor": ("supervisor", [A, B])}
        kinds = {"qms": "qms"}  # the QMS's key speaks for the QMS (quality results and dispositions)
        keys = {who: (await ApiKeys(db).create(f"uc-{who}-{tag}", role, plants, kind=kinds.get(who)))[1]
                for who, (role, plants) in roles.items()}
        # SAP's business events go to the gateway's ERP intake, as S/4HANA's event mesh would send them.
        sap = stack.enter_context(SimulatorServer(str(base / "s4.db"), webhook_url=f"{gateway_url}/v1/erp/sap/events",
                                                  webhook_headers={"Authorization": f"Bearer {keys['erp']}"}))

        plants_dir = base / "plants"
        plants_dir.mkdir()
        for plant in (A, B):
            data = plant_file(plant, sap.url, servers[plant].url, servers["qms"].url, servers["wms"].url)
            (plants_dir / f"{plant}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
        plants = load_plants(plants_dir)

        def policy_for(plant: str) -> PlantPolicy:
            cfg = plants.get(plant)
            return (cfg.policy if cfg else PlantPolicy()).model_copy(update={"task_queue": QUEUE})

        def translate(event: dict[str, Any]) -> dict[str, Any]:
            cfg = plants.get(str(event.get("plant")))
            return cfg.translate_event(event) if cfg is not None else event

        registry = ConfiguredRegistry(plants, reference)
        stack.push_async_callback(registry.aclose)
        source = erp_order_source(plants)
        assert isinstance(source, SapODataConnector)
        stack.push_async_callback(source.aclose)
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=30))
        uc = PlantStack(client=client, reference=reference, sap=sap, mes={A: servers[A].url, B: servers[B].url},
                   qms=servers["qms"].url, wms=servers["wms"].url, gateway=gateway_url, plants=plants, http=http,
                   keys=keys)
        # Stock in the WMS, so staging and spare-part reservations find material.
        for material, location, unit in (("RM-HOUSING", "RM-A01", "EA"), ("RM-OIL", "RM-A01", "LTR"),
                                         ("RM-PA66", "RM-B01", "KG"), ("SEAL-KIT-1", "SP-01", "EA")):
            response = await http.put(f"{uc.wms}/admin/stock",
                                      json={"material": material, "location": location, "qty": "100000", "unit": unit})
            response.raise_for_status()
        await stack.enter_async_context(build_worker(client, QUEUE, registry, db))
        deps = GatewayDeps(client=client, db=db, policy_for=policy_for, order_source=source,
                           ack_wait=timedelta(seconds=4), translate=translate, redrive_on_startup=False)
        gateway = await serve_app(create_app(deps), port)

        async def stop_gateway() -> None:
            for plant in (A, B):  # the MESs stop sending first
                await http.put(f"{servers[plant].url}/admin/outbound", json={"url": None, "token": None})
            await gateway.stop()

        stack.push_async_callback(stop_gateway)
        for plant in (A, B):
            response = await http.put(f"{servers[plant].url}/admin/outbound",
                                      json={"url": f"{gateway_url}/v1/plant/events", "token": keys[f"mes-{plant}"]})
            response.raise_for_status()
        yield uc


