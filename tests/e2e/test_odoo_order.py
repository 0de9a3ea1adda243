"""An Odoo release to `done`, over real HTTP: Odoo simulator -> webhook -> gateway -> saga -> Odoo postings.

The Odoo simulator runs as an HTTP server speaking Odoo's own APIs (JSON-2 on 19.0, JSON-RPC on
17.0/18.0); its automation webhook posts to the gateway (uvicorn on a free port); the saga runs on
the real Temporal dev server in a worker whose ERP is the Odoo connector (a subprocess that is
SIGKILLed in the chaos test). What is counted is Odoo's own data, read through Odoo's API.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from temporalio.client import Client
from temporalio.service import RPCError

from plantbridge.activities.odoo_poll import start_odoo_pollers
from plantbridge.canonical import ExceptionResolution, OrderState, ProductionOrder
from plantbridge.canonical.plant_config import ErpConfig, PlantConfig
from plantbridge.client import order_handle, order_summary, submit_event
from plantbridge.connectors.odoo import OdooConnector
from plantbridge.connectors.reference import ReferenceStore
from plantbridge.gateway.app import create_app
from plantbridge.gateway.deps import GatewayDeps
from plantbridge.store import Database
from plantbridge.store.inbox import Inbox
from plantbridge.workers.registry import ConfiguredRegistry, odoo_connector
from plantbridge.workers.worker import build_worker
from plantbridge.workflows.odoo_poller import PollResult, poller_id
from plantbridge_devtools.simulators.odoo.app import DEFAULT_KEY
from plantbridge_devtools.simulators.odoo.server import OdooServer
from plantbridge_devtools.temporal_server import DevServer, free_port
from tests.conftest import event, fast_policy, qty
from tests.test_saga_exceptions import eventually

KEY_ENV = "PLANTBRIDGE_TEST_ODOO_KEY"
TOKEN_ENV = "PLANTBRIDGE_TEST_ODOO_WEBHOOK"
MINE = ("stock.scrap", "stock.move.line", "maintenance.request")


def plant_cfg(plant: str, odoo: OdooServer, queue: str, version: str, api: str, poll_s: float = 3600) -> PlantConfig:
    os.environ[KEY_ENV] = DEFAULT_KEY
    os.environ[TOKEN_ENV] = f"tok-{plant}-secret-{uuid.uuid4().hex}"
    # Above the connector's worst case (8 RPCs x 2 s; the worker checks it at start: workers/timeouts.py).
    policy = fast_policy(task_queue=queue, activity_timeout=timedelta(seconds=20))
    return PlantConfig(plant=plant, policy=policy, erp=ErpConfig(
        kind="odoo", url=odoo.url, database="odoo", login="admin", api_key_env=KEY_ENV, version=version,
        api=api, timeout_s=2.0, webhook_token_env=TOKEN_ENV, poll_interval_s=poll_s))  # type: ignore[arg-type]


@pytest.fixture
def odoo(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OdooServer]:
    with OdooServer(str(tmp_path / "odoo.db"), version=request.param) as server:
        yield server


def admin(odoo: OdooServer, method: str, path: str, body: Any = None) -> Any:
    r = httpx.request(method, f"{odoo.url}/admin/{path}", json=body, timeout=10)
    r.raise_for_status()
    return r.json() if r.content else None


class Gateway:
    def __init__(self, url: str, deps: GatewayDeps, token: str) -> None:
        self.url, self.deps, self.token = url, deps, token


@pytest.fixture
async def gateway_for(client: Client, db: Database) -> AsyncIterator[Any]:
    running: list[tuple[uvicorn.Server, asyncio.Task[None], OdooConnector]] = []

    async def start(cfg: PlantConfig) -> Gateway:
        source = odoo_connector(cfg.plant, cfg.erp)
        token = os.environ[TOKEN_ENV]
        deps = GatewayDeps(client=client, db=db, policy_for=lambda _p: cfg.policy, ack_wait=timedelta(seconds=5),
                           redrive_on_startup=False, order_sources={cfg.plant: source},
                           odoo_tokens={cfg.plant: token})
        port = free_port()
        # log_config=None: uvicorn's access log propagates to the root logger, where the test reads it.
        server = uvicorn.Server(uvicorn.Config(create_app(deps), host="127.0.0.1", port=port, log_level="info",
                                               access_log=True, log_config=None, lifespan="on"))
        server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.02)
            if task.done():
                task.result()
        running.append((server, task, source))
        return Gateway(f"http://127.0.0.1:{port}", deps, token)

    yield start
    for server, task, source in running:
        server.should_exit = True
        await task
        await source.aclose()


def hook_url(gw: Gateway, plant: str) -> str:
    return f"{gw.url}/v1/erp/odoo/events/{plant}/{gw.token}"


async def saga_started(client: Client, plant: str, number: str) -> bool:
    try:
        await order_handle(client, plant, number).describe()  # no worker needed (a query would need one)
    except RPCError:
        return False
    return True


async def run_order(client: Client, order: ProductionOrder, *, ack_wait: timedelta = timedelta(seconds=10)) -> None:
    async def send(ev_type: str, **fields: Any) -> None:
        ack = await submit_event(client, event(order, ev_type, source=f"mes-{order.plant}", **fields),
                                 ack_wait=ack_wait)
        assert ack.status == "accepted", ack

    await send("operation_started", operation="0010", work_center="ASSY-01")
    await send("operation_confirmed", operation="0010", yield_qty=qty(60), scrap_qty=qty(2))
    await send("operation_confirmed", operation="0010", yield_qty=qty(38), final=True)
    await send("material_consumed", material="RM-OIL", quantity=qty("2.5", "LTR"))
    await send("material_consumed", material="RM-OIL", quantity=qty("2", "LTR"))
    await send("operation_confirmed", operation="0020", work_center="PACK-01", yield_qty=qty(98), final=True)


async def odoo_reader(cfg: PlantConfig) -> OdooConnector:
    return odoo_connector(cfg.plant, cfg.erp)


async def assert_done_once(conn: OdooConnector, mo_id: int) -> None:
    """Counted through Odoo's API: MO done; no record with two __plantbridge__ ids, none without one."""
    rpc = conn.rpc
    [mo] = await rpc.call("mrp.production", "read", [mo_id], fields=["state", "qty_produced", "scrap_ids"])
    assert mo["state"] == "done" and mo["qty_produced"] == 98, mo
    bound = await rpc.call("ir.model.data", "search_read", domain=[["module", "=", "__plantbridge__"]],
                           fields=["model", "res_id", "name"])
    per_record = Counter((r["model"], r["res_id"]) for r in bound)
    assert per_record and max(per_record.values()) == 1, per_record
    created: list[tuple[str, int]] = []
    for model in MINE:
        created += [(model, int(i)) for i in await rpc.call(model, "search", domain=[])]
    created += [("mrp.workcenter.productivity", int(i)) for i in await rpc.call(
        "mrp.workcenter.productivity", "search", domain=[["description", "=like", "plantbridge%"]])]
    assert sorted(created) == sorted(per_record), (created, per_record)
    assert len(mo["scrap_ids"]) == 1
    oil = await rpc.call("stock.move", "search_read", domain=[["raw_material_production_id", "=", mo_id],
                                                              ["product_uom", "=", 3]], fields=["quantity", "state"])
    assert [(m["quantity"], m["state"]) for m in oil] == [(4.5, "done")]
    confs = [n for n in (r["name"] for r in bound) if n.startswith("conf_")]
    assert len(confs) == 3


def _worker(server: DevServer, db: Database, reference_url: str, plant_dir: Path, queue: str,
            log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PLANTBRIDGE_TEMPORAL_ADDRESS": server.address, "PLANTBRIDGE_TASK_QUEUE": queue,
           "PLANTBRIDGE_STORE_URL": db.url, "PLANTBRIDGE_REFERENCE_URL": reference_url,
           "PLANTBRIDGE_PLANTS_DIR": str(plant_dir)}
    return subprocess.Popen([sys.executable, "-m", "plantbridge.workers.cli", "worker"], env=env,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT)


@pytest.mark.parametrize("odoo", ["19.0"], indirect=True)
async def test_webhook_release_to_done_with_faults_and_a_worker_restart(
    client: Client, odoo: OdooServer, temporal_server: DevServer, db: Database, sqlite_reference: ReferenceStore,
    gateway_for: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    plant, queue = "3001", "odoo-chaos"
    cfg = plant_cfg(plant, odoo, queue, "19.0", "json2")
    gw = await gateway_for(cfg)
    admin(odoo, "PATCH", "settings", {"webhook_url": hook_url(gw, plant)})
    mo = admin(odoo, "POST", "productions", {})  # confirmed in Odoo: the automation rule posts the webhook
    number = str(mo["id"])
    await eventually(lambda: saga_started(client, plant, number), timeout=30)
    hooks = [m for m in await Inbox(db).messages(status="processed", limit=100_000) if m.channel == f"odoo:{plant}"]
    # Processed even when Odoo's 1 s webhook timeout cut the answer short (the gateway finishes anyway).
    assert [m.order_number for m in hooks] == [number] and len(admin(odoo, "GET", "webhooks")) == 1
    # The token never reaches a log line (uvicorn's access log shows the path redacted).
    # (the simulator's own HTTP client, httpx, logs the URL it posts to: that is Odoo's side, not ours)
    lines = [r.getMessage() for r in caplog.records if r.name.startswith(("uvicorn", "plantbridge", "temporalio"))]
    assert any("/v1/erp/odoo/events/3001/***" in line for line in lines), lines[-20:]
    assert not any(gw.token in line for line in lines)
    (tmp_path / "plants").mkdir()
    (tmp_path / "plants" / f"{plant}.yaml").write_text(cfg.model_dump_json())
    conn = await odoo_reader(cfg)
    order = await conn.read_order(number)
    admin(odoo, "PUT", "faults", {"error_5xx_ratio": 0.1, "hang_ratio": 0.1, "hang_seconds": 3,
                                  "lost_answer_ratio": 0.1, "seed": 7})
    log = tmp_path / "worker.log"
    first = _worker(temporal_server, db, sqlite_reference.url, tmp_path / "plants", queue, log)
    second = None
    try:
        sender = asyncio.create_task(run_order(client, order, ack_wait=timedelta(seconds=90)))
        await eventually(lambda: _some_posted(conn, odoo), timeout=90)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        second = _worker(temporal_server, db, sqlite_reference.url, tmp_path / "plants", queue, log)
        await asyncio.wait_for(sender, 180)
        result = await asyncio.wait_for(order_handle(client, plant, number).result(), 180)
    finally:
        if second is not None:
            second.send_signal(signal.SIGTERM)
            second.wait(30)
        if first.poll() is None:
            first.kill()
        admin(odoo, "DELETE", "faults")
    text = log.read_text()
    assert result.state is OrderState.POSTED and not result.exceptions, text[-3000:]
    await assert_done_once(conn, mo["id"])
    assert text.count("transient odoo error") >= 2, text[-3000:]
    await conn.aclose()


async def _some_posted(conn: OdooConnector, odoo: OdooServer) -> bool:
    rows = admin(odoo, "GET", "state")["objects"].get("ir.model.data", [])
    return any(r["module"] == "__plantbridge__" for r in rows)


@pytest.mark.parametrize("odoo", ["17.0"], indirect=True)
async def test_release_missed_by_the_webhook_is_picked_up_by_the_poller(
    client: Client, odoo: OdooServer, db: Database, reference: ReferenceStore,
) -> None:
    plant, queue = "3002", "odoo-poll"
    cfg = plant_cfg(plant, odoo, queue, "17.0", "jsonrpc", poll_s=1)
    admin(odoo, "PATCH", "settings", {"webhook_url": "http://127.0.0.1:9/unreachable", "webhook_paused": True})
    mo = admin(odoo, "POST", "productions", {})
    number = str(mo["id"])
    registry = ConfiguredRegistry({plant: cfg}, reference)
    async with build_worker(client, queue, registry, db):
        assert await start_odoo_pollers(client, {plant: cfg}, queue) == [poller_id(plant)]
        assert await start_odoo_pollers(client, {plant: cfg}, queue) == [poller_id(plant)]  # idempotent
        await eventually(lambda: saga_started(client, plant, number), timeout=30)
        conn = await odoo_reader(cfg)
        order = await conn.read_order(number)
        await run_order(client, order)
        result = await asyncio.wait_for(order_handle(client, plant, number).result(), 60)
        await assert_done_once(conn, mo["id"])
        state = await client.get_workflow_handle(poller_id(plant)).query("poller_state", result_type=PollResult)
        assert number in state.started
        await client.get_workflow_handle(poller_id(plant)).terminate("test over")
        await conn.aclose()
    assert admin(odoo, "GET", "webhooks") == []
    assert result.state is OrderState.POSTED
    await registry.aclose()


@pytest.mark.parametrize("odoo", ["18.0"], indirect=True)
async def test_user_error_parks_with_odoos_text_and_a_retry_posts_once(
    client: Client, odoo: OdooServer, db: Database, reference: ReferenceStore, gateway_for: Any,
) -> None:
    plant, queue = "3003", "odoo-reject"
    cfg = plant_cfg(plant, odoo, queue, "18.0", "jsonrpc")
    gw = await gateway_for(cfg)
    async with httpx.AsyncClient(base_url=gw.url, timeout=30) as http:
        bad = await http.post(f"/v1/erp/odoo/events/{plant}/wrong-token", json={"_model": "mrp.production", "_id": 1})
        other = await http.post(f"/v1/erp/odoo/events/9999/{gw.token}", json={"_model": "mrp.production", "_id": 1})
        assert bad.status_code == other.status_code == 401 and bad.json() == other.json()
        assert gw.token not in bad.text
        unknown = await http.post(hook_url(gw, plant).removeprefix(gw.url),
                                  json={"_model": "mrp.production", "_id": 4242})
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "erp_order_not_found"
        registry = ConfiguredRegistry({plant: cfg}, reference)
        async with build_worker(client, queue, registry, db):
            admin(odoo, "PATCH", "settings", {"webhook_url": hook_url(gw, plant)})
            mo = admin(odoo, "POST", "productions", {})
            number = str(mo["id"])
            await eventually(lambda: saga_started(client, plant, number), timeout=30)
            again = await http.post(hook_url(gw, plant).removeprefix(gw.url),
                                    json={"_model": "mrp.production", "_id": mo["id"]})  # a duplicate webhook
            assert again.status_code == 200 and again.json()["status"] == "released", again.text
            conn = await odoo_reader(cfg)
            order = await conn.read_order(number)
            # The work center is blocked in Odoo (an open availability loss): button_start raises UserError.
            [wc] = await conn.rpc.call("mrp.workcenter", "search", domain=[["code", "=", "ASSY-01"]])
            [loss] = await conn.rpc.call("mrp.workcenter.productivity.loss", "search",
                                         domain=[["name", "=", "Equipment Failure"]])
            await conn.rpc.call("mrp.workcenter.productivity", "create", vals_list=[{
                "workcenter_id": wc, "loss_id": loss, "description": "blocked by the planner"}])
            ack = await submit_event(client, event(order, "operation_confirmed", operation="0010",
                                                   yield_qty=qty(10)), ack_wait=timedelta(seconds=10))
            assert ack.erp is not None and ack.erp.status == "rejected", ack
            [exc] = (await order_summary(client, plant, number)).open_exceptions
            assert exc.message == "Please unblock the work center to start the work order.", exc
            assert exc.erp_code == "UserError"
            await conn.rpc.call("mrp.workcenter", "unblock", [wc])  # the planner fixes the cause in Odoo
            handle = order_handle(client, plant, number)
            await handle.signal("resolve_exception", ExceptionResolution(exception_id=exc.id, action="retry",
                                                                         by="anna"))

            async def posted_once() -> bool:
                bound = await conn.rpc.call("ir.model.data", "search_read", domain=[
                    ["module", "=", "__plantbridge__"], ["name", "=like", "conf_%"]], fields=["res_id"])
                return len(bound) == 1

            await eventually(posted_once, timeout=30)

            async def no_open_exception() -> bool:
                return not (await order_summary(client, plant, number)).open_exceptions

            await eventually(no_open_exception, timeout=30)
            assert await posted_once()
            await handle.terminate("test over")
            await conn.aclose()
        await registry.aclose()
