"""The gateway served over real HTTP (uvicorn on a free port, in the test process) against the real
Temporal dev server and the in-process worker of tests/conftest.py."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from temporalio.client import Client

from plantbridge.canonical import PlantPolicy, ProductionOrder
from plantbridge.connectors.memory import MemoryErp, MemoryStore
from plantbridge.gateway.app import create_app
from plantbridge.gateway.deps import GatewayDeps
from plantbridge.gateway.inbox import Intake
from plantbridge.gateway.ratelimit import DEFAULT_RATES, Rate
from plantbridge.store import ApiKeys, Database
from tests.conftest import fast_policy
from tests.support import eventually as eventually  # the gateway tests import it from here
from tests.support import serve_app


@dataclass
class Gateway:
    url: str
    app: FastAPI
    deps: GatewayDeps
    source: MemoryErp  # the ERP's orders, read back on a release event (as the SAP connector does)
    keys: dict[str, str] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)

    @property
    def intake(self) -> Intake:
        intake: Intake = self.app.state.intake
        return intake

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}


def gateway_policy(_plant: str) -> PlantPolicy:
    return fast_policy(ack_wait=timedelta(seconds=5))


KEYS = {
    "mes1000": ("plant-system", ["1000"]),
    "edge1000": ("edge", ["1000"]),
    "mes2000": ("plant-system", ["2000"]),
    "erp1000": ("erp", ["1000"]),
    "erp_all": ("erp", ["*"]),
    "sup1000": ("supervisor", ["1000"]),
    "sup_all": ("supervisor", ["*"]),
}


@pytest.fixture(scope="session")
async def gateway(client: Client, db: Database, worker: object, reference: MemoryStore) -> AsyncIterator[Gateway]:
    # One ERP for the gateway's intake and the worker's `erp.read_order` (a released saga reads its order).
    source = reference.systems().erp
    deps = GatewayDeps(client=client, db=db, policy_for=gateway_policy, order_source=source,
                       ack_wait=timedelta(seconds=5), redrive_on_startup=False,
                       # the suite sends bursts (fuzzing, the contract test): rate limits are tested apart
                       rate_limits={role: Rate(10_000, 100_000) for role in DEFAULT_RATES},
                       lookup_rate=Rate(10_000, 100_000))
    app = create_app(deps)
    served = await serve_app(app)
    gw = Gateway(url=served.url, app=app, deps=deps, source=source)
    keys = ApiKeys(db)
    suffix = uuid.uuid4().hex[:6]
    for who, (role, plants) in KEYS.items():
        info, key = await keys.create(f"{who}-{suffix}", role, plants)
        gw.keys[who] = key
        gw.names[who] = info.name
    yield gw
    await served.stop()


@pytest.fixture
async def http(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as c:
        yield c


def wire(order: ProductionOrder, event_type: str, **fields: object) -> dict[str, object]:
    """A plant event as a plant system sends it (JSON)."""
    body: dict[str, object] = {
        "event_id": f"gw-{uuid.uuid4().hex[:20]}", "event_type": event_type, "source": "mes-1000",
        "plant": order.plant, "order": order.number, "occurred_at": datetime.now(UTC).isoformat(),
    }
    body.update(fields)
    return body
