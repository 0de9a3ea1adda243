"""An order from SAP release to `posted`, over real HTTP against the S/4HANA simulator.

The saga's ERP steps go through the SAP OData connector (the plant file chooses it); the simulator's
own records are what is counted: each confirmation and material document once, with its external key.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client

from plantbridge.canonical import ExceptionResolution, OrderState, ProductionOrder
from plantbridge.client import order_summary, start_order, submit_event
from plantbridge.connectors.sap_odata import SapODataConnector
from plantbridge.store import Database
from plantbridge_devtools.simulators.sap.server import SimulatorServer
from plantbridge_devtools.temporal_server import DevServer
from tests.conftest import event, fast_policy, qty
from tests.e2e.conftest import (
    PASSWORD_ENV,
    SAP_QUEUE,
    admin,
    assert_lookup_before_every_repost,
    create_sap_order,
    sap_state,
)
from tests.support import eventually


def policy(**kw: Any) -> Any:
    return fast_policy(**{"task_queue": SAP_QUEUE, "activity_timeout": timedelta(seconds=8), **kw})


def postings(sap: SimulatorServer, number: str) -> dict[str, list[dict[str, Any]]]:
    state = sap_state(sap)
    padded = number.zfill(12)

    def mine(row: dict[str, Any]) -> bool:
        return any(str(v) in (number, padded) for k, v in row.items() if "Order" in k and isinstance(v, str))

    docs = [d for d in state["material_documents"] if any(mine(i) for i in d.get("items", [d]))]
    return {"confirmations": [c for c in state["confirmations"] if mine(c)], "material_documents": docs,
            "usage_decisions": state["usage_decisions"], "orders": [o for o in state["orders"] if mine(o)]}


async def run_order(client: Client, order: ProductionOrder, *, ack_wait: timedelta = timedelta(seconds=10)) -> None:
    async def send(ev_type: str, **fields: Any) -> None:
        ack = await submit_event(client, event(order, ev_type, source="mes-1710", **fields), ack_wait=ack_wait)
        assert ack.status == "accepted", ack

    await send("operation_started", operation="0010", work_center="ASSY-01")
    await send("operation_confirmed", operation="0010", yield_qty=qty(60), scrap_qty=qty(2))
    await send("operation_confirmed", operation="0010", yield_qty=qty(38), final=True)
    await send("material_consumed", material="RM-OIL", quantity=qty("4.5", "LTR"), storage_location="0001")
    await send("operation_confirmed", operation="0020", yield_qty=qty(98), final=True,
               activities={"setup_min": "10", "machine_min": "45", "labor_min": "30"})


def assert_posted_once(sap: SimulatorServer, number: str) -> None:
    got = postings(sap, number)
    confs = got["confirmations"]
    assert len(confs) == 3, confs
    keys = [c["ExternalSystemConfirmation"] for c in confs]
    assert all(keys) and len(set(keys)) == 3
    docs = got["material_documents"]
    movement_types = Counter(i["GoodsMovementType"] for d in docs for i in d.get("items", []))
    # 261 backflush with the two confirmations of 0010, 261 for the oil, 101 goods receipt.
    assert movement_types["101"] == 1, docs
    assert movement_types["261"] == 3, docs
    header_keys = [d.get("MaterialDocumentHeaderText") for d in docs if d.get("MaterialDocumentHeaderText")]
    assert len(header_keys) == len(set(header_keys))
    [order] = got["orders"]
    assert order.get("OrderIsTechnicallyCompleted") in (True, "X"), order
    assert_lookup_before_every_repost(sap)


async def test_release_to_posted_through_sap(client: Client, sap: SimulatorServer, sap_worker: object,
                                             sap_reader: SapODataConnector) -> None:
    number = create_sap_order(sap)
    order = await sap_reader.read_order(number)
    assert order.released and order.erp_system == "sap_s4"
    assert [op.number for op in order.operations] == ["0010", "0020"]
    handle = await start_order(client, order, policy())
    await run_order(client, order)
    result = await asyncio.wait_for(handle.result(), 60)
    assert result.state is OrderState.POSTED
    assert_posted_once(sap, number)
    docs = [d for st in result.postings if st.result for d in st.result.documents]
    assert any(d.startswith("ProdnOrdConf2 ") for d in docs) and any(d.startswith("MaterialDocument ") for d in docs)


def _worker(server: DevServer, db: Database, reference_url: str, plant_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PLANTBRIDGE_TEMPORAL_ADDRESS": server.address, "PLANTBRIDGE_TASK_QUEUE": "sap-chaos",
           "PLANTBRIDGE_STORE_URL": db.url, "PLANTBRIDGE_REFERENCE_URL": reference_url,
           "PLANTBRIDGE_PLANTS_DIR": str(plant_dir), PASSWORD_ENV: "secret"}
    return subprocess.Popen([sys.executable, "-m", "plantbridge.workers.cli", "worker"], env=env,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT)


async def test_same_run_with_faults_and_a_worker_restart(
    client: Client, sap: SimulatorServer, temporal_server: DevServer, db: Database, sqlite_reference: Any,
    plant_dir: Path, tmp_path: Path, sap_reader: SapODataConnector,
) -> None:
    number = create_sap_order(sap)
    order = await sap_reader.read_order(number)
    admin(sap, "PUT", "faults", {"error_503_ratio": 0.1, "hang_ratio": 0.1, "hang_seconds": 3,
                                 "after_commit_ratio": 0.1, "seed": 11})
    log = tmp_path / "worker.log"
    first = _worker(temporal_server, db, sqlite_reference.url, plant_dir, log)
    try:
        handle = await start_order(client, order, policy(task_queue="sap-chaos"))
        sender = asyncio.create_task(run_order(client, order, ack_wait=timedelta(seconds=90)))
        await eventually(lambda: _some_confirmed(sap, number), timeout=60)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        second = _worker(temporal_server, db, sqlite_reference.url, plant_dir, log)
        try:
            await asyncio.wait_for(sender, 120)
            result = await asyncio.wait_for(handle.result(), 120)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(30)
    finally:
        if first.poll() is None:
            first.kill()
        admin(sap, "DELETE", "faults")
    text = log.read_text()
    assert result.state is OrderState.POSTED, text[-3000:]
    assert not result.exceptions
    assert_posted_once(sap, number)
    # The faults really happened: transient SAP errors were retried (and the ledger saw repeats).
    assert text.count("transient erp error") >= 2, text[-3000:]


async def _some_confirmed(sap: SimulatorServer, number: str) -> bool:
    return len(postings(sap, number)["confirmations"]) >= 1


async def test_sap_rejections_open_exceptions_and_retry_posts_once(
    client: Client, sap: SimulatorServer, sap_worker: object, sap_reader: SapODataConnector,
) -> None:
    number = create_sap_order(sap, release=False)
    order = (await sap_reader.read_order(number)).model_copy(update={"released": True})  # a stale release message
    handle = await start_order(client, order, policy())
    ack = await submit_event(client, event(order, "operation_confirmed", operation="0010", yield_qty=qty(10)),
                             ack_wait=timedelta(seconds=10))
    assert ack.erp is not None and ack.erp.status == "rejected"
    [exc] = (await order_summary(client, order.plant, order.number)).open_exceptions
    assert exc.erp_code == "BS/013" and "CRTD" in exc.message
    admin(sap, "POST", f"orders/{number}/release")  # the planner releases the order in SAP
    await handle.signal("resolve_exception", ExceptionResolution(exception_id=exc.id, action="retry", by="anna"))
    await eventually(lambda: _confirmations(sap, number, 1))

    admin(sap, "PATCH", "rules", {"period_closed": True})
    ack = await submit_event(client, event(order, "operation_confirmed", operation="0010", yield_qty=qty(10)),
                             ack_wait=timedelta(seconds=10))
    assert ack.erp is not None and ack.erp.status == "rejected" and "Posting only possible" in (ack.erp.message or "")
    exc2 = next(e for e in (await order_summary(client, order.plant, order.number)).open_exceptions)
    assert exc2.erp_code == "M7/053"
    admin(sap, "PATCH", "rules", {"period_closed": False})
    await handle.signal("resolve_exception", ExceptionResolution(exception_id=exc2.id, action="retry", by="anna"))
    await eventually(lambda: _confirmations(sap, number, 2))

    # SAP's own tolerance (10 %) is stricter than the plant file said for this order (20 %).
    lenient = order.model_copy(update={"overdelivery_tolerance_pct": 20})
    other = create_sap_order(sap)
    lenient = lenient.model_copy(update={"number": other})
    h3 = await start_order(client, lenient, policy())
    ack = await submit_event(client, event(lenient, "operation_confirmed", operation="0010", yield_qty=qty(115)),
                             ack_wait=timedelta(seconds=10))
    assert ack.status == "accepted" and ack.erp is not None and ack.erp.status == "rejected"
    exc3 = (await order_summary(client, lenient.plant, lenient.number)).open_exceptions[0]
    assert exc3.erp_code and exc3.message
    await h3.signal("resolve_exception", ExceptionResolution(exception_id=exc3.id, action="skip", by="anna",
                                                             comment="confirmed 100 by hand in CO11N"))
    await asyncio.sleep(1)
    assert len(postings(sap, number)["confirmations"]) == 2 and not postings(sap, other)["confirmations"]


async def _confirmations(sap: SimulatorServer, number: str, n: int) -> bool:
    return len(postings(sap, number)["confirmations"]) == n


async def test_csrf_token_expiring_mid_run_costs_no_posting(
    client: Client, sap: SimulatorServer, sap_worker: object, sap_reader: SapODataConnector,
) -> None:
    number = create_sap_order(sap)
    order = await sap_reader.read_order(number)
    handle = await start_order(client, order, policy())
    ack = await submit_event(client, event(order, "operation_confirmed", operation="0010", yield_qty=qty(50)),
                             ack_wait=timedelta(seconds=10))
    assert ack.erp is not None and ack.erp.status == "posted"
    admin(sap, "POST", "csrf/expire")
    await submit_event(client, event(order, "operation_confirmed", operation="0010", yield_qty=qty(50), final=True),
                       ack_wait=timedelta(seconds=10))
    admin(sap, "POST", "csrf/expire")
    await submit_event(client, event(order, "material_consumed", material="RM-OIL", quantity=qty(5, "LTR")),
                       ack_wait=timedelta(seconds=10))
    admin(sap, "POST", "csrf/expire")
    await submit_event(client, event(order, "operation_confirmed", operation="0020", yield_qty=qty(100), final=True),
                       ack_wait=timedelta(seconds=10))
    result = await asyncio.wait_for(handle.result(), 60)
    assert result.state is OrderState.POSTED and not result.exceptions
    assert len(postings(sap, number)["confirmations"]) == 3
