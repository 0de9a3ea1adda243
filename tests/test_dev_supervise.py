"""`plantbridge dev` supervises its children: with the demo running (its first confirmations in SAP), the
Temporal dev server and then the worker are SIGKILLed; both come back (new pids in dev.json, Temporal on
the same database file) and the demo ends with every order posted or cancelled as scripted; SAP's own
data holds no confirmation (nor other posting) with an external key twice and none without one, Odoo
none with two external ids or none. Afterwards the sagas are still listed and the restarted worker answers
their queries, and dev goes on.

The demo's plant systems send again through the outage (503 with `Retry-After`, no connection): the MES
simulator's outbox, the demo's own calls (devtools resend.py)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console

from plantbridge_devtools.demo import run_demo
from plantbridge_devtools.erp_audit import audit_sap
from plantbridge_devtools.stack import pid_alive, read_dev_file
from tests.support import eventually
from tests.test_dev_stack import wait_for_dev_json

pytestmark = pytest.mark.heavy  # minutes, not seconds: `pytest -m 'not heavy'` for a quick loop


async def _restarted(state: Path, name: str, old_pid: int) -> int | None:
    info: dict[str, Any] | None = read_dev_file(state)
    pid = (info or {}).get("pids", {}).get(name)
    return pid if isinstance(pid, int) and pid != old_pid and pid_alive(pid) else None


async def test_temporal_and_worker_killed_during_the_demo_come_back_and_every_order_ends(tmp_path: Path) -> None:
    state = tmp_path / "state"
    log = tmp_path / "dev.out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLANTBRIDGE_")}
    env["COLUMNS"] = "200"
    proc = subprocess.Popen([sys.executable, "-m", "plantbridge.workers.cli", "dev", "--state-dir", str(state),
                             "--free-ports"], stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)
    demo: asyncio.Task[bool] | None = None
    try:
        info = await asyncio.to_thread(wait_for_dev_json, state / "dev.json", proc, log)
        pids = info["pids"]
        result: dict[str, Any] = {}
        demo_out = tmp_path / "demo.out"
        demo = asyncio.create_task(run_demo(4, Console(file=demo_out.open("w"), width=120), state_dir=state,
                                            result=result))
        sap = info["urls"]["sap"]
        async with httpx.AsyncClient(timeout=10) as http:
            async def confirmed() -> bool:  # the demo is under way: its first confirmations reached SAP
                assert not demo.done(), demo_out.read_text()[-3000:]
                r = await http.get(f"{sap}/admin/state")
                return r.status_code == 200 and r.json()["counts"]["confirmations"] >= 2

            await eventually(confirmed, 120, what="the demo's first confirmations in SAP")
            os.killpg(pids["temporal"], signal.SIGKILL)
            temporal = await eventually(lambda: _restarted(state, "temporal", pids["temporal"]), 90,
                                        what="the Temporal dev server restarted")
            assert not demo.done(), "the demo ended before the worker was killed"
            os.killpg(pids["worker"], signal.SIGKILL)
            worker = await eventually(lambda: _restarted(state, "worker", pids["worker"]), 90,
                                      what="the worker restarted")
            ok = await asyncio.wait_for(demo, 400)
            sap_state = (await http.get(f"{sap}/admin/state")).json()
        assert ok and result["duplicates"] == 0, demo_out.read_text()[-4000:]
        assert set(result["states"].values()) <= {"posted", "cancelled"}, result["states"]
        assert set(result["odoo"]["states"].values()) <= {"posted", "cancelled"}, result["odoo"]
        assert not result["odoo"]["doubled"] and not result["odoo"]["unbound"], result["odoo"]
        audit = audit_sap(sap_state, set(result["states"]))
        assert audit.postings["confirmation"] >= 8, audit.postings
        assert audit.doubled == [] and audit.unkeyed == [], audit
        # The sagas of before are still there (same database file) and the restarted worker answers
        # their queries (the order view is the saga's `summary` query).
        gateway, supervisor = info["urls"]["gateway"], {"Authorization": f"Bearer {info['api_keys']['supervisor']}"}
        async with httpx.AsyncClient(base_url=gateway, headers=supervisor, timeout=30) as http:
            async def listed() -> list[dict[str, Any]] | None:
                r = await http.get("/v1/orders")
                orders: list[dict[str, Any]] = r.json()["orders"] if r.status_code == 200 else []
                return orders if len(orders) >= len(result["states"]) else None

            orders = await eventually(listed, 90, what="the orders of before the kill listed")
            assert {o["state"] for o in orders} <= {"posted", "cancelled"}, orders

            async def viewed() -> bool:
                first = orders[0]
                r = await http.get(f"/v1/orders/{first['plant']}/{first['order']}")
                return r.status_code == 200

            await eventually(viewed, 90, what="an order's summary answered by the restarted worker")
        assert proc.poll() is None, log.read_text()[-3000:]
        assert pid_alive(temporal) and pid_alive(worker)
        text = log.read_text()
        assert "temporal" in text and "restarted" in text, text[-3000:]
        temporal_log = (state / "temporal.log").read_text()
        assert "restarted by plantbridge dev" in temporal_log and str(state / "temporal.db") in temporal_log
    finally:
        if demo is not None and not demo.done():
            demo.cancel()
            with contextlib.suppress(BaseException):
                await demo
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
    assert code == 0, log.read_text()[-3000:]
    assert not (state / "dev.json").exists()
