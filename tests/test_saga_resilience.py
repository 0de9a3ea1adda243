"""A worker killed mid-order, a long order continuing as new, and replay of a recorded history."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

from temporalio.client import Client

from plantbridge.canonical import OrderState
from plantbridge.client import order_summary, start_order, submit_event
from plantbridge.connectors.memory import MemoryStore
from plantbridge.connectors.reference import ReferenceStore
from plantbridge.store import Database, Ledger
from plantbridge_devtools.temporal_server import DevServer
from tests.conftest import event, fast_policy, new_order, qty
from tests.support import eventually

RESTART_QUEUE = "plantbridge-restart-test"


def _worker_process(server: DevServer, db: Database, reference: ReferenceStore, plants: Path,
                    log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PLANTBRIDGE_TEMPORAL_ADDRESS": server.address, "PLANTBRIDGE_TASK_QUEUE": RESTART_QUEUE,
           "PLANTBRIDGE_STORE_URL": db.url, "PLANTBRIDGE_REFERENCE_URL": reference.url,
           "PLANTBRIDGE_PLANTS_DIR": str(plants)}
    return subprocess.Popen([sys.executable, "-m", "plantbridge.workers.cli", "worker"], env=env,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT)


async def test_worker_killed_mid_order_finishes_without_double_posting(
    client: Client, temporal_server: DevServer, db: Database, sqlite_reference: ReferenceStore,
    reference_plants: Path, tmp_path: Path,
) -> None:
    reference = sqlite_reference
    order = new_order(components=False)
    handle = await start_order(client, order, fast_policy(task_queue=RESTART_QUEUE, event_signals=True,
                                                          activity_timeout=timedelta(seconds=3)))
    log = tmp_path / "worker.log"
    first = _worker_process(temporal_server, db, reference, reference_plants, log)
    try:
        events = [event(order, "operation_confirmed", operation="0010", yield_qty=qty(10)) for _ in range(10)]
        for ev in events[:5]:
            assert (await submit_event(client, ev, ack_wait=timedelta(seconds=10))).status == "accepted"
        # Fire the rest as signals and kill the worker while they are being posted.
        for ev in events[5:]:
            await handle.signal("plant_event", ev)
        await eventually(lambda: _confirmations_at_least(reference, order.number, 6), timeout=30)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
    second = _worker_process(temporal_server, db, reference, reference_plants, log)
    try:
        await submit_event(client, event(order, "operation_confirmed", operation="0020", yield_qty=qty(100),
                                         final=True), ack_wait=timedelta(seconds=30))
        await submit_event(client, event(order, "operation_confirmed", operation="0010", yield_qty=qty(0),
                                         final=True), ack_wait=timedelta(seconds=30))
        result = await asyncio.wait_for(handle.result(), timeout=60)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=20)
    assert result.state is OrderState.POSTED
    erp = await reference.calls(system="erp", order=order.number)
    assert Counter(c.operation for c in erp) == {"confirm_operation": 12, "goods_receipt": 1, "complete_order": 1}
    assert len({c.external_key for c in erp}) == len(erp)
    ledger = [e for e in await Ledger(db).entries(handle.id) if e.system == "erp"]
    assert len(ledger) == 14 and all(e.status == "succeeded" for e in ledger)
    assert second.returncode == 0, log.read_text()[-2000:]


async def _confirmations_at_least(reference: ReferenceStore, order: str, n: int) -> bool:
    return len(await reference.calls(system="erp", operation="confirm_operation", order=order)) >= n


async def test_long_order_continues_as_new_keeping_state_and_dedup(
    client: Client, worker: object, reference: MemoryStore
) -> None:
    order = new_order(components=False)
    handle = await start_order(client, order, fast_policy(continue_as_new_after=500, event_signals=True))
    first_run = (await handle.describe()).run_id
    # 3,000 downtime events (no postings) plus confirmations, as signals like the edge agent sends.
    sent = []
    for i in range(1500):
        start = event(order, "downtime_started", work_center="ASSY-01", reason="MAT", event_id=f"dt-{i}-s")
        end = event(order, "downtime_ended", work_center="ASSY-01", event_id=f"dt-{i}-e")
        sent += [start, end]
    await asyncio.gather(*(handle.signal("plant_event", ev) for ev in sent[:1000]))
    for ev in sent[1000:]:
        await handle.signal("plant_event", ev)
    confirm = event(order, "operation_confirmed", operation="0010", yield_qty=qty(30), event_id="conf-1")
    assert (await submit_event(client, confirm)).status == "accepted"

    async def all_counted() -> bool:
        summary = await order_summary(client, order.plant, order.number)
        return summary.events_accepted + summary.events_rejected == 3001

    await eventually(all_counted, timeout=120)
    summary = await order_summary(client, order.plant, order.number)
    assert summary.runs >= 5, summary.runs
    assert (await handle.describe()).run_id != first_run
    # Dedup survives the roll-overs: the first events are still known.
    assert (await submit_event(client, sent[0])).status == "duplicate"
    assert (await submit_event(client, confirm)).status == "duplicate"
    assert summary.operations["0010"].yield_total == 30
    assert len(await reference.calls(system="erp", operation="confirm_operation", order=order.number)) == 1


async def test_worker_killed_while_a_posting_is_in_flight_posts_it_once(
    client: Client, temporal_server: DevServer, db: Database, sqlite_reference: ReferenceStore,
    reference_plants: Path, tmp_path: Path,
) -> None:
    """The ERP has taken the confirmation but its answer has not come back (a `stall` rule: posted, then
    30 s of silence) when the worker is SIGKILLed: the ledger shows the step `started`, never `succeeded`.
    The reference ERP takes a second posting with the same key (as a real ERP may), so only the new
    worker's look-up by external key keeps SAP's data at one confirmation."""
    reference = sqlite_reference
    order = new_order(components=False)
    handle = await start_order(client, order, fast_policy(task_queue=RESTART_QUEUE,
                                                          activity_timeout=timedelta(seconds=60)))
    await reference.add_rule("erp", "confirm_operation", order=order.number, kind="stall", code="30",
                             message="posted, answer delayed")
    log = tmp_path / "worker.log"
    first = _worker_process(temporal_server, db, reference, reference_plants, log)
    try:
        ack = await submit_event(client, event(order, "operation_confirmed", operation="0010", yield_qty=qty(100),
                                               final=True), ack_wait=timedelta(seconds=1))
        assert ack.status == "accepted"
        await eventually(lambda: _confirmations_at_least(reference, order.number, 1), timeout=30)
        in_flight = [e for e in await Ledger(db).entries(handle.id) if e.step_kind == "erp.confirm_operation"]
        assert [e.status for e in in_flight] == ["started"]  # posted in the ERP, not answered: in flight
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
    await reference.clear_rules()
    second = _worker_process(temporal_server, db, reference, reference_plants, log)
    try:
        await submit_event(client, event(order, "operation_confirmed", operation="0020", yield_qty=qty(100),
                                         final=True), ack_wait=timedelta(seconds=30))
        result = await asyncio.wait_for(handle.result(), timeout=90)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=20)
    assert result.state is OrderState.POSTED
    confirmations = await reference.calls(system="erp", operation="confirm_operation", order=order.number)
    assert len(confirmations) == 2 and len({c.external_key for c in confirmations}) == 2  # 0010 once, 0020 once
    ledger = [e for e in await Ledger(db).entries(handle.id) if e.system == "erp"]
    assert all(e.status == "succeeded" for e in ledger)
    first_key = next(e for e in ledger if e.key == in_flight[0].key)
    assert first_key.attempts >= 2 and first_key.documents == [confirmations[0].document]
