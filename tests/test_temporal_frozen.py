"""Temporal frozen (SIGSTOP: the server keeps its sockets and never answers) for ~20 s during a stream of
plant events and one SAP business event, through the real gateway over HTTP, on a private Temporal dev
server (this test stops it; the suite's shared one is left alone) and an in-process worker.

Every answer comes within the gateway's bound (RPC_TIMEOUT, plus slack for the shared CPU), each is a
503 with `Retry-After` (kept `deferred`) or a 2xx; after SIGCONT the gateway's re-driver delivers every
message by itself (no replay): each event once in its saga, the SAP event's saga started once.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client
from temporalio.service import RPCError

from plantbridge.canonical.order import ProductionOrder, workflow_id
from plantbridge.client import RPC_TIMEOUT, connect, order_summary, start_order
from plantbridge.connectors.memory import MemoryRegistry, MemoryStore
from plantbridge.gateway.app import create_app
from plantbridge.gateway.deps import GatewayDeps
from plantbridge.store import ApiKeys, Database, Inbox, sqlite_url
from plantbridge.workers.worker import build_worker
from plantbridge_devtools.temporal_server import DevServer
from tests.conftest import TASK_QUEUE, fast_policy, new_order, qty
from tests.gateway.conftest import wire
from tests.support import eventually, free_port, serve_app

FREEZE_S = 20.0
# The bound (5 s) plus what the shared CPU may add; an unbounded call took 40-45 s here.
ANSWER_WITHIN_S = RPC_TIMEOUT.total_seconds() + 4.0


def cloud_event(number: str) -> dict[str, object]:
    return {"specversion": "1.0", "type": "sap.s4.beh.productionorder.v1.ProductionOrder.Changed.v1",
            "source": "/default/sap.s4.beh/S4HCLNT100", "id": f"ce-{number}-{uuid.uuid4().hex[:6]}",
            "data": {"ManufacturingOrder": number.zfill(12)}}


@pytest.fixture
async def frozen_server(tmp_path: Path) -> AsyncIterator[DevServer]:
    server = DevServer(db_file=tmp_path / "temporal.db", port=free_port(), headless=True,
                       log_file=tmp_path / "temporal.log")
    await server.start()
    yield server
    assert server.process is not None
    os.killpg(server.process.pid, signal.SIGCONT)  # never leave it stopped
    server.stop()


async def test_temporal_frozen_every_answer_bounded_and_everything_delivered_once(
    frozen_server: DevServer, tmp_path: Path,
) -> None:
    assert frozen_server.process is not None
    client: Client = await connect(frozen_server.address)
    reference = MemoryStore()
    db = await Database(sqlite_url(tmp_path / "gateway.db")).init()
    source = reference.systems().erp
    deps = GatewayDeps(client=client, db=db, policy_for=lambda _p: fast_policy(), order_source=source,
                       ack_wait=timedelta(seconds=2), redrive_on_startup=False)
    keys = ApiKeys(db)
    _, mes = await keys.create("mes-frozen", "plant-system", ["1000"])
    _, erp = await keys.create("erp-frozen", "erp", ["1000"])
    _, sup = await keys.create("sup-frozen", "supervisor", ["1000"])
    order_a = new_order()
    order_b = new_order()
    source.put(order_b)  # released in the ERP: its SAP event starts its saga
    async with build_worker(client, TASK_QUEUE, MemoryRegistry(reference), db):
        await start_order(client, order_a, fast_policy())
        served = await serve_app(create_app(deps))
        answers: list[tuple[str, int, float, str | None]] = []  # (what, status, seconds, Retry-After)
        events_a: list[dict[str, object]] = []
        events_b: list[dict[str, object]] = []
        try:
            async with httpx.AsyncClient(base_url=served.url, timeout=60) as http:
                async def post(path: str, body: dict[str, object], key: str, what: str) -> None:
                    began = time.monotonic()
                    r = await http.post(path, json=body, headers={"Authorization": f"Bearer {key}"})
                    answers.append((what, r.status_code, time.monotonic() - began, r.headers.get("Retry-After")))
                    assert r.status_code in (200, 202, 503), r.text
                    if r.status_code == 503:
                        assert r.json()["error"]["code"] in ("temporal_unavailable", "saga_limit", "saga_busy")

                async def plant_event(order: ProductionOrder, into: list[dict[str, object]]) -> None:
                    ev = wire(order, "operation_confirmed", operation="0010", yield_qty=qty(1))
                    into.append(ev)
                    await post("/v1/plant/events", ev, mes, f"event {ev['event_id']}")

                for _ in range(3):  # Temporal answers
                    await plant_event(order_a, events_a)
                assert all(status in (200, 202) for _, status, _, _ in answers), answers
                os.killpg(frozen_server.process.pid, signal.SIGSTOP)
                frozen_at = time.monotonic()
                await plant_event(order_a, events_a)
                await post("/v1/erp/sap/events", cloud_event(order_b.number), erp, "sap event")
                began = time.monotonic()  # the supervisor API is bounded too: 503, not a hang
                r = await http.get(f"/v1/orders/{order_a.plant}/{order_a.number}",
                                   headers={"Authorization": f"Bearer {sup}"})
                assert r.status_code == 503 and r.headers.get("Retry-After"), r.text
                assert time.monotonic() - began <= ANSWER_WITHIN_S
                while time.monotonic() - frozen_at < FREEZE_S:
                    await plant_event(order_a, events_a)
                    await plant_event(order_b, events_b)
                os.killpg(frozen_server.process.pid, signal.SIGCONT)
                for _ in range(2):  # and the stream goes on
                    await plant_event(order_a, events_a)
        finally:
            os.killpg(frozen_server.process.pid, signal.SIGCONT)

        try:
            slow = [a for a in answers if a[2] > ANSWER_WITHIN_S]
            assert not slow, f"answers slower than {ANSWER_WITHIN_S} s: {slow}"
            deferred = [a for a in answers if a[1] == 503]
            assert deferred, "nothing was answered 503 while Temporal was frozen: the freeze was not tested"
            assert all(a[3] is not None for a in deferred), deferred
            assert any(a[0] == "sap event" and a[1] == 503 for a in answers), answers

            inbox = Inbox(db)

            async def settled() -> bool:
                return all([await inbox.count(s) == 0 for s in ("deferred", "received", "waiting", "dead")])

            await eventually(settled, 180, what="every deferred message re-driven by the gateway", every=1.0)
            for order, events in ((order_a, events_a), (order_b, events_b)):
                ids = {str(e["event_id"]) for e in events}

                async def all_seen(order: ProductionOrder = order, ids: set[str] = ids) -> bool:
                    try:
                        s = await order_summary(client, order.plant, order.number)
                    except RPCError:
                        return False
                    return ids <= set(s.seen_event_ids)

                await eventually(all_seen, 60, what=f"order {order.number}'s events in its saga")
                summary = await order_summary(client, order.plant, order.number)
                assert set(summary.seen_event_ids) == ids and summary.events_accepted == len(ids)
                assert summary.operations["0010"].confirmations == len(ids)
            wf_b = workflow_id(order_b.plant, order_b.number)
            runs_b = [wf async for wf in client.list_workflows(f"WorkflowId = '{wf_b}'")]
            assert len(runs_b) == 1, runs_b  # the SAP event started order B's saga once
            rows = await inbox.messages(limit=10_000)
            assert {r.status for r in rows} == {"processed"}
            sap_rows = [r for r in rows if r.channel == "sap_event"]
            assert len(sap_rows) == 1 and sap_rows[0].attempts >= 2  # deferred, then delivered by the re-driver
        finally:
            await served.stop()
            await db.close()
