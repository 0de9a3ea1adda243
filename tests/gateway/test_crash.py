"""The gateway process (`python -m plantbridge.gateway`, a real subprocess) is SIGKILLed mid-stream and
restarted: every event answered 2xx before the kill is processed by the saga, none twice."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
from temporalio.client import Client

from plantbridge.client import order_summary, start_order
from plantbridge.connectors.memory import MemoryStore
from plantbridge.store import ApiKeys, Database, Inbox, sqlite_url
from plantbridge_devtools.temporal_server import DevServer
from tests.conftest import TASK_QUEUE, fast_policy, new_order, qty
from tests.gateway.conftest import wire
from tests.support import eventually, free_port


async def _none_received(inbox: Inbox) -> bool:
    return await inbox.count("received") == 0

ROOT = Path(__file__).resolve().parents[2]


def start_gateway(port: int, temporal: str, store_url: str, log: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "plantbridge.gateway", "--port", str(port), "--temporal", temporal,
           "--store-url", store_url, "--task-queue", TASK_QUEUE]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=log.open("ab"), stderr=subprocess.STDOUT,
                            env={**os.environ, "PLANTBRIDGE_ACK_WAIT_S": "5", "PLANTBRIDGE_INBOX_LEASE_S": "2"},
                            start_new_session=True)


async def wait_ready(http: httpx.AsyncClient, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        assert proc.poll() is None, "gateway exited"
        try:
            if (await http.get("/openapi.json")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError("gateway did not come up")


async def test_sigkill_mid_stream_loses_and_doubles_nothing(
    client: Client, worker: object, reference: MemoryStore, temporal_server: DevServer, tmp_path: Path,
) -> None:
    store_url = sqlite_url(tmp_path / "gateway.db")
    db = await Database(store_url).init()
    _, key = await ApiKeys(db).create("mes-crash", "plant-system", ["1000"])
    order = new_order()
    await start_order(client, order, fast_policy())
    events = [wire(order, "operation_confirmed", operation="0010", yield_qty=qty(1)) for _ in range(24)]
    port = free_port()
    log = tmp_path / "gateway.log"
    proc = start_gateway(port, temporal_server.address, store_url, log)
    acked: list[str] = []
    headers = {"Authorization": f"Bearer {key}"}
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            await wait_ready(http, proc)
            killed = False
            for i, ev in enumerate(events):
                if i == 10:  # kill while this request is in flight
                    asyncio.get_running_loop().call_later(0.03, os.killpg, proc.pid, signal.SIGKILL)
                try:
                    r = await http.post("/v1/plant/events", json=ev, headers=headers)
                except httpx.TransportError:
                    killed = True
                    break
                assert r.status_code in (200, 202), r.text
                acked.append(str(ev["event_id"]))
            assert killed, "the gateway answered everything before the kill; nothing was tested"
            proc.wait(timeout=10)
            proc = start_gateway(port, temporal_server.address, store_url, log)
            await wait_ready(http, proc)
            # The client carries on where it was cut off (re-sending the one in flight).
            for ev in events[len(acked):]:
                r = await http.post("/v1/plant/events", json=ev, headers=headers)
                assert r.status_code in (200, 202), r.text
                assert r.json()["status"] in ("accepted", "duplicate")
            # The row in flight at the kill stays leased to the dead process for its lease (2 s here),
            # then the restarted gateway's re-driver takes it over.
            inbox = Inbox(db)
            await eventually(lambda: _none_received(inbox), 60, what="the row left 'received' re-driven")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=15)

    summary = await order_summary(client, order.plant, order.number)
    ids = [str(e["event_id"]) for e in events]
    assert set(acked) <= set(summary.seen_event_ids)
    assert set(summary.seen_event_ids) == set(ids) and summary.events_accepted == len(ids)
    assert summary.operations["0010"].confirmations == len(ids)
    confirmations = await reference.calls(system="erp", operation="confirm_operation", order=order.number)
    assert len(confirmations) == len(ids) and len({c.external_key for c in confirmations}) == len(ids)
    assert await inbox.count("received") == 0 and await inbox.count("dead") == 0
    await db.close()
