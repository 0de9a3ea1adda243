"""Machine to ERP, all real: the OPC UA machine simulator -> the edge agent (SQLite outbox) -> the gateway
(FastAPI under uvicorn, stopped and started on the same port) -> the `ProductionOrder` saga on the real
Temporal server -> the SAP OData connector -> the S/4HANA simulator.

What is counted is what each real component recorded: the edge outbox (event ids, per-event answers),
the saga's `summary` (events accepted, duplicates, timeline, operation quantities) and the SAP
simulator's own confirmations (quantities, final flag, external key) and material documents.

Reason codes are mapped twice, as in a plant: the machine's local stop reason (``MAINT``) by the edge
agent's ``reason_map`` (``MAINT-01``), then by the plant's cross-references in the gateway (``PM01``).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from temporalio.client import Client, WorkflowHandle

from plantbridge.canonical.plant_config import CrossReferences
from plantbridge.canonical.policy import PlantPolicy
from plantbridge.canonical.saga import SagaState
from plantbridge.client import order_summary, start_order
from plantbridge.connectors.sap_odata import SapODataConnector
from plantbridge.edge import EdgeAgent
from plantbridge.edge.config import EdgeConfig, parse_config
from plantbridge.edge.states import EquipmentState
from plantbridge.gateway.app import create_app
from plantbridge.gateway.deps import GatewayDeps
from plantbridge.store import Database
from plantbridge.store.api_keys import ApiKeys
from plantbridge_devtools.simulators.machines import MachineSimulator, MachineSpec
from plantbridge_devtools.simulators.sap.server import SimulatorServer
from tests.conftest import fast_policy
from tests.e2e.conftest import (
    SAP_PLANT,
    SAP_QUEUE,
    assert_lookup_before_every_repost,
    create_sap_order,
    sap_plant,
    sap_state,
)
from tests.e2e.test_sap_order import postings
from tests.support import eventually, free_port

SIM_URI = "urn:plantbridge:machine-simulator"
WORK_CENTER = "ASSY-01"  # operation 0010 of the SAP simulator's orders
EDGE_SOURCE = f"edge-{SAP_PLANT}"
EDGE_PREFIX = f"edge{SAP_PLANT}-"
EDGE_REASONS = {"MAINT": "MAINT-01", "BREAKDOWN": "BRK-01", "NO_MATERIAL": "MAT-01"}  # machine -> plant code
PLANT_REASONS = {"MAINT-01": "PM01", "BRK-01": "PM02", "MAT-01": "LOG1"}  # plant code -> ERP code (gateway xref)
DS, DE, OC = "downtime_started", "downtime_ended", "operation_confirmed"


def policy() -> PlantPolicy:
    return fast_policy(task_queue=SAP_QUEUE, activity_timeout=timedelta(seconds=8))


# ---------------------------------------------------------------------------------------- servers


class Served:
    """An ASGI app under uvicorn on a fixed port, in this event loop: stop it and start it again."""

    def __init__(self, app: Any, *, lifespan: Literal["on", "off"] = "off") -> None:
        self.app = app
        self.lifespan = lifespan
        self.port = free_port()
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning",
                                lifespan=self.lifespan, access_log=False, timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        deadline = time.monotonic() + 10
        while not self._server.started:
            if self._task.done():
                self._task.result()  # the error that stopped it (port taken, ...)
                raise RuntimeError(f"{self.url} stopped while starting")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.url} did not start")
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        server, task, self._server, self._task = self._server, self._task, None, None
        if server is not None and task is not None:
            server.should_exit = True
            await task


class Gateway(Served):
    """plantbridge's real gateway (`create_app`), as `plantbridge gateway` serves it."""

    def __init__(self, app: FastAPI) -> None:
        super().__init__(app, lifespan="on")

    async def start(self) -> None:
        await super().start()
        async with httpx.AsyncClient() as http:
            response = await http.get(f"{self.url}/healthz", timeout=5)
        assert response.status_code == 200 and response.json() == {"status": "ok"}, response.text

    async def down(self) -> None:
        await self.stop()
        with pytest.raises(httpx.TransportError):  # really down: the port refuses connections
            async with httpx.AsyncClient() as http:
                await http.get(f"{self.url}/healthz", timeout=2)


class LossyProxy(Served):
    """Passes `POST /v1/plant/events` on to the gateway; loses the gateway's answer to the first `lose`
    requests (answers 503 instead), as a network or a crash between sending and recording would."""

    def __init__(self, upstream: str, lose: int) -> None:
        super().__init__(Starlette(routes=[Route("/v1/plant/events", self.handle, methods=["POST"])]))
        self.upstream = upstream
        self.lose = lose
        self.lost_answers: list[dict[str, Any]] = []  # what the gateway answered and the agent never saw
        self.posts = 0

    async def handle(self, request: Request) -> Response:
        self.posts += 1
        body = await request.body()
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "content-type")}
        async with httpx.AsyncClient(timeout=30) as http:
            upstream = await http.post(f"{self.upstream}/v1/plant/events", content=body, headers=headers)
        if self.lose > 0:
            self.lose -= 1
            self.lost_answers.append(upstream.json())
            return JSONResponse({"detail": "answer lost on the way back"}, status_code=503)
        return Response(upstream.content, status_code=upstream.status_code,
                        media_type=upstream.headers.get("content-type"))


# ---------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
async def machines() -> AsyncIterator[MachineSimulator]:
    specs = [MachineSpec(mid, f"Assembly cell {mid}", WORK_CENTER) for mid in ("E1", "E2", "E3")]
    simulator = MachineSimulator(f"opc.tcp://127.0.0.1:{free_port()}/plantbridge/", specs)
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture(scope="module")
async def gateway(client: Client, db: Database, sap: SimulatorServer) -> AsyncIterator[Gateway]:
    plant = sap_plant(sap).model_copy(update={"xref": CrossReferences(reasons=PLANT_REASONS)})

    def translate(event: dict[str, Any]) -> dict[str, Any]:
        return plant.translate_event(event) if str(event.get("plant")) == SAP_PLANT else event

    deps = GatewayDeps(client=client, db=db, policy_for=lambda _plant: policy(), ack_wait=timedelta(seconds=5),
                       redrive_on_startup=False, translate=translate)
    served = Gateway(create_app(deps))
    await served.start()
    yield served
    await served.stop()


@pytest.fixture(scope="module")
async def edge_key(db: Database) -> str:
    _info, key = await ApiKeys(db).create(f"edge-test-{uuid.uuid4().hex[:8]}", "edge", [SAP_PLANT])
    return key


@pytest.fixture
async def up(gateway: Gateway) -> AsyncIterator[Gateway]:
    """The gateway, running when the test starts and when it ends."""
    if not gateway.running:
        await gateway.start()
    yield gateway
    if not gateway.running:
        await gateway.start()


# ---------------------------------------------------------------------------------------- helpers


def edge_config(machines: MachineSimulator, gateway_url: str, machine: str, outbox: Path) -> EdgeConfig:
    node = f"nsu={SIM_URI};s={{id}}"
    return parse_config({
        "plant": SAP_PLANT,
        "source": EDGE_SOURCE,
        "gateway": {"url": gateway_url, "backoff_initial_s": 0.1, "backoff_max_s": 0.5, "timeout_s": 30},
        "endpoints": {"line": {"url": machines.endpoint, "security": "none", "allow_insecure": True,
                               "publishing_interval_ms": 50, "reconnect_initial_s": 0.3, "reconnect_max_s": 1.0,
                               "watchdog_s": 0.5}},
        "machines": [{
            "id": machine, "endpoint": "line", "work_center": WORK_CENTER,
            "nodes": {"state": f"{node}.MachineryItemState.CurrentState.Id", "good": f"{node}.GoodCount",
                      "scrap": f"{node}.ScrapCount", "stop_reason": f"{node}.StopReason",
                      "order": f"{node}.CurrentOrder", "operation": f"{node}.CurrentOperation"},
        }],
        "reason_map": EDGE_REASONS,
        "min_downtime_s": 0,
        "final_on_order_change": True,
        "outbox_path": str(outbox),
    }, "edge-e2e")


async def start_agent(config: EdgeConfig, key: str) -> EdgeAgent:
    agent = EdgeAgent(config, api_key=key)
    await agent.start()
    await eventually(lambda: agent.sessions and all(s.stats.connected for s in agent.sessions), what="OPC UA session")
    [tracker] = agent.trackers.values()
    await eventually(lambda: tracker.state is not None and tracker.good_last is not None, what="the machine's values")
    return agent


async def release_order(client: Client, sap: SimulatorServer, reader: SapODataConnector) -> tuple[str, WorkflowHandle[
        object, SagaState]]:
    number = create_sap_order(sap)
    order = await reader.read_order(number)
    assert (order.operations[0].number, order.operations[0].work_center) == ("0010", WORK_CENTER)
    return number, await start_order(client, order, policy())


def tracker_of(agent: EdgeAgent) -> Any:
    [tracker] = agent.trackers.values()
    return tracker


async def count(machines: MachineSimulator, agent: EdgeAgent, machine: str, good: int = 0, scrap: int = 0) -> None:
    """Produce parts and wait until the agent counted them."""
    tracker = tracker_of(agent)
    expected = (tracker.acc_good + good, tracker.acc_scrap + scrap)
    await machines.count(machine, good, scrap)
    await eventually(lambda: (tracker.acc_good, tracker.acc_scrap) == expected, what=f"{machine} counted {expected}")


async def reset_counters(machines: MachineSimulator, agent: EdgeAgent, machine: str) -> None:
    """The machine's counters drop to zero (a PLC reset); the agent keeps what it counted."""
    tracker = tracker_of(agent)
    before = (tracker.acc_good, tracker.acc_scrap)
    await machines.reset_counters(machine)
    await eventually(lambda: (tracker.good_last, tracker.scrap_last) == (0, 0), what=f"{machine} counter reset seen")
    assert (tracker.acc_good, tracker.acc_scrap) == before


async def run(machines: MachineSimulator, agent: EdgeAgent, machine: str) -> None:
    await machines.run(machine)
    await eventually(lambda: tracker_of(agent).state is EquipmentState.RUNNING, what=f"{machine} running")


def outbox(agent: EdgeAgent) -> list[dict[str, Any]]:
    assert agent.outbox is not None
    return agent.outbox.all_events()


async def stop_machine(machines: MachineSimulator, agent: EdgeAgent, machine: str, reason: str) -> str:
    """Stop with a reason and wait until the agent wrote its downtime_started; its event id."""
    known = {row["event_id"] for row in outbox(agent)}
    await machines.stop_machine(machine, reason)
    rows = await eventually(lambda: [r for r in outbox(agent) if r["event_id"] not in known],
                            what=f"{machine} downtime")
    [row] = rows
    assert row["payload"]["event_type"] == DS and row["payload"]["reason"] == EDGE_REASONS[reason]
    return str(row["event_id"])


async def summary(client: Client, number: str) -> SagaState:
    return await order_summary(client, SAP_PLANT, number)


def edge_events(s: SagaState) -> list[str]:
    """The edge agent's event ids the saga accepted, in the order it accepted them."""
    return [eid for eid in s.seen_event_ids if eid.startswith(EDGE_PREFIX)]


def edge_timeline(s: SagaState) -> list[tuple[str, str]]:
    return [(t.event_id or "", t.text) for t in s.timeline if t.kind == "event" and (t.event_id or "").startswith(
        EDGE_PREFIX)]


async def confirmation_posted(client: Client, number: str, event_id: str) -> SagaState | None:
    s = await summary(client, number)
    step = next((st for st in s.steps if st.id == f"{event_id}:confirm"), None)
    return s if step is not None and step.status == "done" else None


def sap_confirmations(sap: SimulatorServer, number: str | None = None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = sap_state(sap)["confirmations"]
    if number is None:
        return rows
    return [c for c in rows if str(c.get("OrderID", "")).lstrip("0") == number]


def assert_one_confirmation(sap: SimulatorServer, number: str, good: int, scrap: int) -> dict[str, Any]:
    """SAP's own data: exactly one (final) confirmation of operation 0010, with these quantities; every
    external key in SAP unique."""
    [conf] = sap_confirmations(sap, number)
    assert conf["OrderOperation"] == "0010" and conf["WorkCenter"] == WORK_CENTER, conf
    assert Decimal(str(conf["ConfirmationYieldQuantity"])) == good, conf
    assert Decimal(str(conf["ConfirmationScrapQuantity"])) == scrap, conf
    assert conf["IsFinalConfirmation"] is True and conf["FinalConfirmationType"] == "X", conf
    assert conf["ExternalSystemConfirmation"], conf
    keys = [c["ExternalSystemConfirmation"] for c in sap_confirmations(sap) if c.get("ExternalSystemConfirmation")]
    assert len(keys) == len(set(keys))
    assert_lookup_before_every_repost(sap)  # the simulator takes duplicates: only the look-up prevents one
    # the confirmation's backflush (RM-HOUSING on 0010): one material document, one 261 item
    [doc] = postings(sap, number)["material_documents"]
    assert [i["GoodsMovementType"] for i in doc["items"]] == ["261"], doc
    return conf


def kinds(rows: list[dict[str, Any]]) -> list[str]:
    return [r["payload"]["event_type"] for r in rows]


def assert_in_order(rows: list[dict[str, Any]]) -> None:
    """Outbox rows: occurred_at never goes back, the machine's sequence numbers rise by one."""
    times = [datetime.fromisoformat(r["payload"]["occurred_at"]) for r in rows]
    assert times == sorted(times), times
    seqs = [int(r["event_id"].rsplit("-", 1)[1]) for r in rows]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs


# ---------------------------------------------------------------------------------------- tests


async def test_machine_run_downtime_and_order_change_reach_sap_once(
    client: Client, sap: SimulatorServer, sap_worker: object, sap_reader: SapODataConnector, up: Gateway,
    machines: MachineSimulator, edge_key: str, tmp_path: Path,
) -> None:
    number, handle = await release_order(client, sap, sap_reader)
    following = create_sap_order(sap)  # the next order the machine runs
    await machines.set_order("E1", number, "0010")
    agent = await start_agent(edge_config(machines, up.url, "E1", tmp_path / "outbox.db"), edge_key)
    try:
        await run(machines, agent, "E1")
        await count(machines, agent, "E1", good=30, scrap=1)
        await count(machines, agent, "E1", good=12)
        await reset_counters(machines, agent, "E1")
        await count(machines, agent, "E1", good=20, scrap=2)

        stopped = time.monotonic()
        ds = await stop_machine(machines, agent, "E1", "MAINT")
        await eventually(lambda: _has(client, number, ds), what="downtime_started at the saga")
        await asyncio.sleep(max(0.0, 2.5 - (time.monotonic() - stopped)))  # stopped for a few seconds
        await run(machines, agent, "E1")
        await count(machines, agent, "E1", good=5)

        await machines.set_order("E1", following, "0010")  # order change: operation 0010 of `number` ends
        rows = await eventually(lambda: len(outbox(agent)) == 3 and outbox(agent), what="3 edge events")
        oc = rows[2]["event_id"]
        s = await eventually(lambda: confirmation_posted(client, number, oc), what="the confirmation posted in SAP")
        await eventually(lambda: agent.stats()["queued"] == 0, what="outbox drained")
        rows = outbox(agent)
        stats = agent.stats()
    finally:
        await agent.stop()
        await machines.stop_machine("E1", "END")

    # the edge outbox: three events, each answered `accepted` by the gateway (from the saga)
    assert kinds(rows) == [DS, DE, OC]
    assert [r["status"] for r in rows] == ["accepted"] * 3, rows
    assert [json.loads(r["answer"])["status"] for r in rows] == ["accepted"] * 3
    assert_in_order(rows)
    ds_row, de_row, oc_row = (r["payload"] for r in rows)
    assert ds_row["reason"] == de_row["reason"] == "MAINT-01"  # the edge agent's mapping
    assert ds_row["work_center"] == WORK_CENTER and ds_row["equipment"] == "E1" and ds_row["order"] == number
    assert 2 <= int(de_row["description"].removeprefix("duration_s=")) <= 5
    assert oc_row["order"] == number and oc_row["operation"] == "0010" and oc_row["final"] is True
    assert oc_row["yield_qty"] == {"quantity": "67", "uom": "H87"}  # 30 + 12, reset, 20, 5
    assert oc_row["scrap_qty"] == {"quantity": "3", "uom": "H87"}
    assert stats["sent"] == 3 and stats["duplicate"] == 0 and stats["rejected"] == 0

    # the saga: the three events once, in order; reasons as the ERP codes them (gateway xref)
    assert edge_events(s) == [r["event_id"] for r in rows]
    timeline = edge_timeline(s)
    assert [eid for eid, _ in timeline] == edge_events(s)
    assert timeline[0][1] == f"{DS} op 0010 reason PM01" and timeline[1][1] == f"{DE} op 0010 reason PM01", timeline
    assert timeline[2][1].startswith(f"{OC} op 0010 yield 67 H87 scrap 3 final"), timeline
    assert s.events_accepted == 3 and s.duplicates == 0 and s.events_rejected == 0
    assert s.downtime_open == {}
    op = s.operations["0010"]
    assert (op.yield_total, op.scrap_total, op.final, op.confirmations) == (67, 3, True, 1)
    assert s.state.value == "partially_confirmed" and not s.open_exceptions
    [posting] = [st for st in s.postings if st.event_id == oc]
    assert posting.result is not None and any(d.startswith("ProdnOrdConf2 ") for d in posting.result.documents)

    # SAP: one final confirmation with these quantities; none for the following order
    assert_one_confirmation(sap, number, good=67, scrap=3)
    assert sap_confirmations(sap, following) == []
    await handle.terminate("test done")


async def _has(client: Client, number: str, event_id: str) -> bool:
    return event_id in (await summary(client, number)).seen_event_ids


async def test_gateway_down_events_buffered_then_delivered_in_order_once(
    client: Client, sap: SimulatorServer, sap_worker: object, sap_reader: SapODataConnector, up: Gateway,
    machines: MachineSimulator, edge_key: str, tmp_path: Path,
) -> None:
    number, handle = await release_order(client, sap, sap_reader)
    await machines.set_order("E2", number, "0010")
    agent = await start_agent(edge_config(machines, up.url, "E2", tmp_path / "outbox.db"), edge_key)
    try:
        await run(machines, agent, "E2")
        await count(machines, agent, "E2", good=25, scrap=1)
        await stop_machine(machines, agent, "E2", "MAINT")  # delivered while the gateway is up
        await run(machines, agent, "E2")
        await eventually(lambda: agent.stats()["sent"] == 2, what="first downtime delivered")

        await up.down()
        await stop_machine(machines, agent, "E2", "BREAKDOWN")
        await run(machines, agent, "E2")
        await count(machines, agent, "E2", good=10)
        await reset_counters(machines, agent, "E2")
        await count(machines, agent, "E2", good=8, scrap=2)
        await stop_machine(machines, agent, "E2", "NO_MATERIAL")
        await run(machines, agent, "E2")
        assert agent.finish_operation(WORK_CENTER) == 1  # the operation ends (MES/operator says so)
        await eventually(lambda: agent.stats()["queued"] == 5, what="5 events buffered in the outbox")
        await eventually(lambda: agent.stats()["gateway_failures"] >= 3, what="the agent trying the gateway meanwhile")
        buffered = [r["event_id"] for r in outbox(agent) if r["status"] == "pending"]
        during = await summary(client, number)
        assert edge_events(during) == [r["event_id"] for r in outbox(agent)][:2] and during.events_accepted == 2

        await up.start()
        await eventually(lambda: agent.stats()["queued"] == 0, what="outbox drained after the gateway came back")
        rows = outbox(agent)
        s = await eventually(lambda: confirmation_posted(client, number, rows[-1]["event_id"]), what="the confirmation")
        stats = agent.stats()
    finally:
        await agent.stop()
        await machines.stop_machine("E2", "END")

    assert [r["event_id"] for r in rows][2:] == buffered
    assert kinds(rows) == [DS, DE, DS, DE, DS, DE, OC]
    assert [r["status"] for r in rows] == ["accepted"] * 7, rows
    assert_in_order(rows)
    assert [r["payload"].get("reason") for r in rows[:6]] == ["MAINT-01"] * 2 + ["BRK-01"] * 2 + ["MAT-01"] * 2
    assert rows[6]["payload"]["yield_qty"]["quantity"] == "43" and rows[6]["payload"]["scrap_qty"]["quantity"] == "3"
    assert stats["sent"] == 7 and stats["accepted"] == 7 and stats["duplicate"] == 0
    assert stats["gateway_failures"] >= 3 and stats["gateway_last_error"] is None

    # the saga: every event once, in the order the machine produced them
    ids = [r["event_id"] for r in rows]
    assert edge_events(s) == ids
    assert [eid for eid, _ in edge_timeline(s)] == ids
    assert [text.split(" reason ")[1] for _, text in edge_timeline(s)[:6]] == ["PM01"] * 2 + ["PM02"] * 2 + ["LOG1"] * 2
    assert s.events_accepted == 7 and s.duplicates == 0 and s.events_rejected == 0 and s.downtime_open == {}
    op = s.operations["0010"]
    assert (op.yield_total, op.scrap_total, op.final, op.confirmations) == (43, 3, True, 1)

    # SAP: one confirmation, external keys unique
    assert_one_confirmation(sap, number, good=43, scrap=3)
    await handle.terminate("test done")


async def test_agent_restarted_with_full_outbox_delivers_same_ids_once(
    client: Client, sap: SimulatorServer, sap_worker: object, sap_reader: SapODataConnector, up: Gateway,
    machines: MachineSimulator, edge_key: str, tmp_path: Path,
) -> None:
    number, handle = await release_order(client, sap, sap_reader)
    await machines.set_order("E3", number, "0010")
    store = tmp_path / "outbox.db"

    await up.down()
    first = await start_agent(edge_config(machines, up.url, "E3", store), edge_key)
    try:
        await run(machines, first, "E3")
        await count(machines, first, "E3", good=30)
        await stop_machine(machines, first, "E3", "MAINT")
        await run(machines, first, "E3")
        await count(machines, first, "E3", good=12, scrap=1)
        assert first.finish_operation(WORK_CENTER) == 1
        await stop_machine(machines, first, "E3", "BREAKDOWN")  # still down when the agent goes down
        await eventually(lambda: first.stats()["queued"] == 4, what="4 events buffered")
        await eventually(lambda: first.stats()["gateway_failures"] >= 1, what="a failed attempt")
        queued = [r["event_id"] for r in outbox(first)]
    finally:
        await first.stop()
    assert (await summary(client, number)).events_accepted == 0

    await up.start()
    proxy = LossyProxy(up.url, lose=1)  # the first answer after the restart is lost: the agent resends
    await proxy.start()
    second = await start_agent(edge_config(machines, proxy.url, "E3", store), edge_key)  # the same outbox
    try:
        await eventually(lambda: second.stats()["queued"] == 0 and second.stats()["sent"] == 4, what="outbox drained")
        await run(machines, second, "E3")  # the downtime left open ends after the restart
        rows = await eventually(lambda: len(outbox(second)) == 5 and second.stats()["queued"] == 0 and outbox(second),
                              what="downtime end delivered")
        s = await eventually(lambda: confirmation_posted(client, number, queued[2]), what="the confirmation")
        stats = second.stats()
    finally:
        await second.stop()
        await proxy.stop()
        await machines.stop_machine("E3", "END")

    ids = [r["event_id"] for r in rows]
    assert ids[:4] == queued and kinds(rows) == [DS, DE, OC, DS, DE]
    assert int(ids[4].rsplit("-", 1)[1]) == 5  # the restored checkpoint continued the sequence
    assert_in_order(rows)
    # the gateway took the four (the saga accepted them), its answer was lost; the resend of the very
    # same ids was answered `duplicate`, which the outbox keeps as their final answer
    [lost] = proxy.lost_answers
    assert [(r["event_id"], r["status"]) for r in lost["results"]] == [(eid, "accepted") for eid in queued]
    assert [r["status"] for r in rows] == ["duplicate"] * 4 + ["accepted"], rows
    for row in rows[:4]:
        answer = json.loads(row["answer"])
        assert answer["status"] == "duplicate" and "was received before" in answer["reason"], answer
    assert proxy.posts >= 3 and stats["duplicate"] == 4 and stats["accepted"] == 1

    # the saga: each id accepted once, in order; the resend never entered it
    assert edge_events(s) == ids and [eid for eid, _ in edge_timeline(s)] == ids
    assert s.events_accepted == 5 and s.duplicates == 0 and s.downtime_open == {}
    op = s.operations["0010"]
    assert (op.yield_total, op.scrap_total, op.final, op.confirmations) == (42, 1, True, 1)

    # SAP: posted once
    assert_one_confirmation(sap, number, good=42, scrap=1)
    await handle.terminate("test done")
