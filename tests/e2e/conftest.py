"""End-to-end fixtures: the S/4HANA simulator over real HTTP, a plant configured for it, and a
worker whose ERP is the SAP OData connector."""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from plantbridge.canonical.plant_config import ErpConfig, PlantConfig
from plantbridge.connectors.memory import MemoryStore
from plantbridge.connectors.sap_odata import SapODataConnector
from plantbridge.store import Database
from plantbridge.workers.registry import ConfiguredRegistry
from plantbridge.workers.worker import build_worker
from plantbridge_devtools.simulators.sap.server import SimulatorServer

SAP_PLANT = "1710"
SAP_QUEUE = "plantbridge-sap-e2e"
PASSWORD_ENV = "PLANTBRIDGE_TEST_SAP_PASSWORD"
_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def sap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorServer]:
    db = tmp_path_factory.mktemp("sap") / "s4.db"
    server = SimulatorServer(str(db))
    server.start()
    yield server
    server.stop()


def sap_plant(sap: SimulatorServer, **erp: Any) -> PlantConfig:
    os.environ[PASSWORD_ENV] = "secret"
    return PlantConfig(plant=SAP_PLANT, erp=ErpConfig(kind="sap_odata", url=sap.url, user="PLANTBRIDGE",
                                                       password_env=PASSWORD_ENV, timeout_s=2.0,
                                                       overdelivery_tolerance_pct=Decimal(10), **erp))


@pytest.fixture(scope="session")
async def sap_worker(client: Client, sap: SimulatorServer, reference: MemoryStore,
                     db: Database) -> AsyncIterator[Worker]:
    registry = ConfiguredRegistry({SAP_PLANT: sap_plant(sap)}, reference)
    worker = build_worker(client, SAP_QUEUE, registry, db)
    async with worker:
        yield worker
    await registry.aclose()


@pytest.fixture
async def sap_reader(sap: SimulatorServer) -> AsyncIterator[SapODataConnector]:
    async with SapODataConnector(sap.url, user="PLANTBRIDGE", password="secret", plant=SAP_PLANT,
                                 overdelivery_tolerance_pct=Decimal(10)) as conn:
        yield conn


def admin(sap: SimulatorServer, method: str, path: str, body: Any = None) -> Any:
    response = httpx.request(method, f"{sap.url}/admin/{path}", json=body, timeout=10)
    response.raise_for_status()
    return response.json() if response.content else None


def create_sap_order(sap: SimulatorServer, *, release: bool = True, tolerance: str = "10") -> str:
    number = str(7_000_000 + next(_numbers) + (os.getpid() % 100) * 1000)
    admin(sap, "POST", "orders", {
        "order": number, "plant": SAP_PLANT, "material": "FG-PUMP-7", "quantity": "100", "unit": "ST",
        "storage_location": "0001", "tolerance_pct": tolerance, "inspection_lot_origin": "04", "release": release,
        "operations": [
            {"operation": "0010", "work_center": "ASSY-01", "quantity": "100"},
            {"operation": "0020", "work_center": "TEST-01", "quantity": "100"},
        ],
        "components": [
            {"item": "0010", "material": "RM-HOUSING", "quantity": "100", "unit": "ST", "storage_location": "0001",
             "backflush": True, "operation": "0010"},
            {"item": "0020", "material": "RM-OIL", "quantity": "5", "unit": "L", "storage_location": "0001",
             "operation": "0020"},
        ],
    })
    return number


def sap_state(sap: SimulatorServer) -> dict[str, Any]:
    result: dict[str, Any] = admin(sap, "GET", "state")
    return result


def _names(request: dict[str, Any], key: str) -> bool:
    """A GET whose $filter names the key (a matdoc's key is split over two fields: both halves)."""
    where = str(request["query"].get("$filter", ""))
    return request["method"] == "GET" and (key in where or (key[:16] in where and key[16:] in where))


def assert_lookup_before_every_repost(sap: SimulatorServer) -> int:
    """Through the simulator's own traffic log: every POST of a posting whose external key was POSTed
    before is preceded, since that earlier POST, by a GET by the key (the connector's look-up). The
    simulator takes duplicates by default, so this (with one document per key in its data) is what
    shows exactly-once; returns the number of re-posts seen."""
    traffic: list[dict[str, Any]] = admin(sap, "GET", "traffic")
    last_post: dict[str, int] = {}
    reposts = 0
    for i, request in enumerate(traffic):
        key = request.get("key")
        if request["method"] != "POST" or not key:
            continue
        if key in last_post:
            reposts += 1
            between = traffic[last_post[key] + 1:i]
            assert any(_names(r, key) for r in between), f"posted {key} again without looking it up: {request}"
        last_post[key] = i
    return reposts


def for_order(rows: list[dict[str, Any]], order: str) -> list[dict[str, Any]]:
    padded = order.zfill(12)
    return [r for r in rows if str(r.get("OrderID") or r.get("ManufacturingOrder") or r.get("order") or "")
            in (order, padded)]


@pytest.fixture
def plant_dir(tmp_path: Path, sap: SimulatorServer) -> Path:
    """A plant file for the worker subprocess (same plant as the in-process worker)."""
    cfg = sap_plant(sap)
    (tmp_path / f"{SAP_PLANT}.yaml").write_text(cfg.model_dump_json())
    return tmp_path
