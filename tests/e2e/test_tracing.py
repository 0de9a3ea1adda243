"""One trace per plant event: gateway request -> Temporal update/workflow -> activity -> the SAP
connector's HTTP call to the S/4HANA simulator, all with one trace id (JSON-lines exporter); a quality
hold's MES step, a local activity, in the hold request's trace."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client

from plantbridge.client import connect, start_order
from plantbridge.connectors.memory import MemoryStore
from plantbridge.connectors.sap_odata import SapODataConnector
from plantbridge.gateway.app import create_app
from plantbridge.gateway.deps import GatewayDeps
from plantbridge.store import Database
from plantbridge.store.api_keys import ApiKeys
from plantbridge.telemetry import flush_traces, setup_tracing
from plantbridge.workers.registry import ConfiguredRegistry
from plantbridge.workers.worker import build_worker
from plantbridge_devtools.simulators.sap.server import SimulatorServer
from plantbridge_devtools.temporal_server import DevServer
from tests.conftest import fast_policy
from tests.e2e.conftest import SAP_PLANT, create_sap_order, sap_plant
from tests.support import eventually

QUEUE = "plantbridge-trace-test"


@pytest.fixture
async def traced_client(temporal_server: DevServer, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[
        tuple[Client, Path]]:
    trace_file = tmp_path_factory.mktemp("traces") / "spans.jsonl"
    setup_tracing("plantbridge-test", trace_file=str(trace_file))
    yield await connect(temporal_server.address), trace_file


async def test_one_trace_from_gateway_to_sap_call(
    traced_client: tuple[Client, Path], sap: SimulatorServer, reference: MemoryStore, db: Database,
    sap_reader: SapODataConnector,
) -> None:
    client, trace_file = traced_client
    registry = ConfiguredRegistry({SAP_PLANT: sap_plant(sap)}, reference)
    policy = fast_policy(task_queue=QUEUE)
    _info, key = await ApiKeys(db).create(f"trace-{id(client)}", "plant-system", [SAP_PLANT])
    app = create_app(GatewayDeps(client=client, db=db, policy_for=lambda _p: policy, redrive_on_startup=False,
                                 ack_wait=timedelta(seconds=10)))
    number = create_sap_order(sap)
    order = await sap_reader.read_order(number)
    async with build_worker(client, QUEUE, registry, db):
        await start_order(client, order, policy)
        body = {"event_id": f"trace-{number}", "event_type": "operation_confirmed", "source": "mes-1710",
                "plant": SAP_PLANT, "order": number, "operation": "0010", "occurred_at": "2026-11-26T10:15:00+01:00",
                "yield_qty": {"quantity": "5", "uom": "H87"}}
        hold = {"event_id": f"trace-hold-{number}", "event_type": "quality_hold", "source": "mes-1710",
                "plant": SAP_PLANT, "order": number, "occurred_at": "2026-11-26T10:20:00+01:00", "reason": "burr"}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as http:
            response = await http.post("/v1/plant/events", json=body, headers={"Authorization": f"Bearer {key}"})
            assert response.status_code == 200 and response.json()["erp"]["status"] == "posted", response.text
            held = await http.post("/v1/plant/events", json=hold, headers={"Authorization": f"Bearer {key}"})
            assert held.status_code == 200 and held.json()["status"] == "accepted", held.text

        async def mes_hold_done() -> bool:
            return bool(await reference.calls("mes", "hold", number))

        await eventually(mes_hold_done)
    await registry.aclose()
    flush_traces()
    spans = [json.loads(line) for line in trace_file.read_text().splitlines()]
    server_span = next(s for s in spans if s["name"].startswith("POST /v1/plant/events")
                       and s["attributes"].get("http.route", "/v1/plant/events") == "/v1/plant/events")
    trace = [s for s in spans if s["trace_id"] == server_span["trace_id"]]
    names = [s["name"] for s in trace]
    assert any(n.startswith("StartWorkflowUpdate:submit_event") for n in names), names
    assert any(n.startswith("HandleUpdate:submit_event") or n.startswith("ValidateUpdate:submit_event")
               for n in names), names
    assert any(n == "RunActivity:erp.confirm_operation" for n in names), names
    # The hold's MES step runs as a local activity: in the hold request's trace, as an activity would be.
    [hold_trace] = {s["trace_id"] for s in spans if s["name"] == "RunActivity:mes.hold"}
    hold_names = [s["name"] for s in spans if s["trace_id"] == hold_trace]
    assert any(n.startswith("POST /v1/plant/events") for n in hold_names), hold_names
    assert any(n.startswith("HandleUpdate:submit_event") or n.startswith("ValidateUpdate:submit_event")
               for n in hold_names), hold_names
    sap_calls = [s for s in trace if s["name"] in ("POST", "GET")
                 and sap.url.split("//")[1] in json.dumps(s["attributes"])]
    assert sap_calls, names  # the connector's HTTP call to S/4HANA, in the same trace
