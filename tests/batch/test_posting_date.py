"""The ERP posting date is the plant's local date of the event.

The ERP activity runs in Temporal's ActivityEnvironment (a real activity context, no server needed)
and posts through the SAP OData connector to the S/4HANA simulator over real HTTP; the posting date
is read back from the simulator's own data.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.testing import ActivityEnvironment

from plantbridge.activities.erp import ErpActivities
from plantbridge.canonical.commands import ConfirmOperation, GoodsReceipt, StepKind, StepRequest
from plantbridge.canonical.fields import Quantity
from plantbridge.canonical.plant_config import PlantConfig
from plantbridge.connectors.sap_odata import SapODataConnector
from plantbridge.store import Database, Ledger, sqlite_url
from plantbridge_devtools.simulators.sap.server import SimulatorServer


@pytest.fixture(scope="module")
def sap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorServer]:
    with SimulatorServer(str(tmp_path_factory.mktemp("sap") / "sap.db")) as server:
        yield server


@dataclass
class OnePlant:
    """The registry shape the worker builds (`ConfiguredRegistry`): plant files and their systems."""

    plants: dict[str, PlantConfig]
    erp: SapODataConnector

    def for_plant(self, plant: str) -> OnePlant:
        return self


async def _order(sap: SimulatorServer) -> str:
    body: dict[str, Any] = {
        "plant": "1000", "material": "FG-100", "quantity": "100", "unit": "ST", "storage_location": "0001",
        "start": "2026-01-14", "end": "2026-01-16", "release": True,
        "operations": [{"operation": "0010", "work_center": "ASSY-01"}],
    }
    async with httpx.AsyncClient(base_url=f"{sap.url}/admin", timeout=10) as admin:
        response = await admin.post("/orders", json=body)
        assert response.status_code == 201, response.text
        return str(response.json()["ManufacturingOrder"])


async def _state(sap: SimulatorServer) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=f"{sap.url}/admin", timeout=10) as admin:
        return dict((await admin.get("/state")).json())


@pytest.mark.parametrize(("timezone", "expected"), [("Europe/Berlin", "2026-01-15"), ("America/Chicago", "2026-01-14")])
async def test_posting_date_is_plant_local_date_of_event(
    sap: SimulatorServer, tmp_path: Path, timezone: str, expected: str
) -> None:
    db = await Database(sqlite_url(tmp_path / "pb.db")).init()
    try:
        async with SapODataConnector(sap.url, user="PLANTBRIDGE", password="secret", timeout=5.0) as erp:
            number = await _order(sap)
            order = await erp.read_order(number)
            registry = OnePlant({"1000": PlantConfig(plant="1000", timezone=timezone)}, erp)
            acts = ErpActivities(registry, Ledger(db))  # type: ignore[arg-type]
            # 23:30 UTC on 14 January: 00:30 on the 15th in Berlin, 17:30 on the 14th in Chicago.
            event_at = datetime(2026, 1, 14, 23, 30, tzinfo=UTC)
            h87 = Quantity(quantity=Decimal(10), uom="H87")
            conf = StepRequest(
                idempotency_key=f"production-order:1000:{number}:ev-{timezone}:confirm", workflow_id="wf",
                step_id="s1", kind=StepKind.ERP_CONFIRM_OPERATION, order=order, event_at=event_at,
                command=ConfirmOperation(operation="0010", work_center="ASSY-01", yield_qty=h87),
            )
            receipt = StepRequest(
                idempotency_key=f"production-order:1000:{number}:ev-{timezone}:gr", workflow_id="wf",
                step_id="s2", kind=StepKind.ERP_GOODS_RECEIPT, order=order, event_at=event_at,
                command=GoodsReceipt(quantity=h87),
            )
            env = ActivityEnvironment()
            await env.run(acts.confirm_operation, conf)
            await env.run(acts.goods_receipt, receipt)
        state = await _state(sap)
        confs = [c for c in state["confirmations"] if str(c["OrderID"]).lstrip("0") == number.lstrip("0")]
        assert [c["PostingDate"] for c in confs] == [expected]
        docs = [d for d in state["material_documents"]
                if any(str(i.get("ManufacturingOrder", "")).lstrip("0") == number.lstrip("0") for i in d["items"])]
        assert docs and {d["PostingDate"] for d in docs} == {expected}
    finally:
        await db.close()
