"""Recorded histories replay under the current workflow code (determinism guard).

`tests/histories/*.json` were recorded from real runs of the saga (hold, rejected posting and retry,
completion). A change to the workflow that would break running orders fails here; such a change
needs `workflow.patched`. Record a new history after a deliberate change with
`PLANTBRIDGE_RECORD_HISTORY=1 pytest tests/test_replay.py` and keep the old files.
"""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHistory

from plantbridge.canonical import ExceptionResolution, ProductionOrder, SupervisorAction
from plantbridge.canonical.exceptions import StepDecision
from plantbridge.client import order_summary, start_order, submit_event
from plantbridge.connectors.memory import MemoryStore
from plantbridge.workflows.maintenance import MaintenanceRequestWorkflow, MaintenanceState
from tests.conftest import event, fast_policy, new_order, qty
from tests.support import eventually
from tests.support.replay import assert_replays, consumption_rejected_then_retried, refuse_the_seal_once

HISTORIES = Path(__file__).parent / "histories"


@pytest.mark.skipif(not os.environ.get("PLANTBRIDGE_RECORD_HISTORY"), reason="records only on request")
async def test_record_history(client: Client, worker: object, reference: MemoryStore) -> None:
    order = new_order()
    await refuse_the_seal_once(reference, order)
    handle = await start_order(client, order, fast_policy(event_signals=True))
    await consumption_rejected_then_retried(client, handle, order)
    await submit_event(client, event(order, "quality_hold", reason="scratch on surface"))
    await handle.signal("plant_event", event(order, "downtime_started", work_center="ASSY-01"))
    await handle.signal("plant_event", event(order, "downtime_ended", work_center="ASSY-01"))
    await submit_event(client, event(order, "operation_confirmed", operation="0010", yield_qty=qty(49), final=True))
    await handle.signal("release_hold", SupervisorAction(by="qa.lead"))
    await submit_event(client, event(order, "operation_confirmed", operation="0020", yield_qty=qty(99), final=True))
    await eventually(lambda: _done(handle))
    history = await handle.fetch_history()
    (HISTORIES / "production_order_full.json").write_text(history.to_json())


@pytest.mark.skipif(not os.environ.get("PLANTBRIDGE_RECORD_HISTORY"), reason="records only on request")
async def test_record_history_policy_and_maintenance(client: Client, worker: object) -> None:
    """Aggregated postings, a maintenance child workflow and a long downtime (patched features)."""
    order = new_order()
    policy = fast_policy(partial_confirmations="aggregate", consumption="aggregate",
                         aggregate_every=timedelta(seconds=1), long_downtime=timedelta(seconds=1),
                         event_signals=True)
    handle = await start_order(client, order, policy)
    await submit_event(client, event(order, "operation_confirmed", operation="0010", yield_qty=qty(30)))
    await submit_event(client, event(order, "material_consumed", material="RM-SEAL", quantity=qty(30)))
    await handle.signal("plant_event", event(order, "downtime_started", work_center="ASSY-01", reason="JAM"))
    await asyncio.sleep(2.5)
    await handle.signal("plant_event", event(order, "downtime_ended", work_center="ASSY-01"))
    await submit_event(client, event(order, "maintenance_requested", equipment="PRESS-2", priority=3,
                                     description="oil leak"))
    await submit_event(client, event(order, "operation_confirmed", operation="0010", yield_qty=qty(70), final=True))
    await submit_event(client, event(order, "operation_confirmed", operation="0020", yield_qty=qty(100), final=True))
    await eventually(lambda: _done(handle))
    history = await handle.fetch_history()
    (HISTORIES / "production_order_policy_maintenance.json").write_text(history.to_json())


@pytest.mark.skipif(not os.environ.get("PLANTBRIDGE_RECORD_HISTORY"), reason="records only on request")
async def test_record_history_bounded_ack(client: Client, worker: object, reference: MemoryStore) -> None:
    """Patch `bounded-ack-wait`: an answer cut off at `ack_wait` (slow ERP) and answers queued behind a parked
    posting (issue 10)."""
    order = new_order()
    await reference.add_rule("erp", "confirm_operation", order=order.number, kind="hang", code="2",
                             message="slow")
    await reference.add_rule("erp", "goods_movement", order=order.number, code="M7/021", times=1,
                             message="Deficit of SL Unrestricted-use 12 KG : RM-SEAL 1000 0001")
    handle = await start_order(client, order, fast_policy(ack_wait=timedelta(seconds=1)))
    ack = await submit_event(client, event(order, "operation_confirmed", operation="0010", yield_qty=qty(50)))
    assert ack.erp is not None and ack.erp.status == "pending"  # the saga stopped waiting after 1 s

    async def confirmed() -> bool:
        return len(await reference.calls("erp", "confirm_operation", order.number)) == 1

    await eventually(confirmed)
    ack = await submit_event(client, event(order, "material_consumed", material="RM-SEAL", quantity=qty(12)))
    assert ack.erp is not None and ack.erp.status == "rejected"
    ack = await submit_event(client, event(order, "material_consumed", material="RM-SEAL", quantity=qty(3)))
    assert ack.erp is not None and ack.erp.status == "pending" and "open exception" in (ack.erp.message or "")
    await reference.clear_rules()
    [exc] = (await order_summary(client, order.plant, order.number)).open_exceptions
    await handle.signal("resolve_exception", ExceptionResolution(exception_id=exc.id, action="retry", by="anna"))
    await submit_event(client, event(order, "operation_confirmed", operation="0010", yield_qty=qty(50), final=True))
    await submit_event(client, event(order, "operation_confirmed", operation="0020", yield_qty=qty(100), final=True))
    await eventually(lambda: _done(handle), timeout=60)
    history = await handle.fetch_history()
    (HISTORIES / "production_order_bounded_ack.json").write_text(history.to_json())


@pytest.mark.skipif(not os.environ.get("PLANTBRIDGE_RECORD_HISTORY"), reason="records only on request")
async def test_record_history_maintenance_exception(client: Client, worker: object, reference: MemoryStore) -> None:
    """A `MaintenanceRequest` child whose ERP notification is refused, retried by name, then completed."""
    order = new_order(components=False)
    await reference.add_rule("erp", "maintenance_notification", order=order.number, code="IW/123", times=1,
                             message="Equipment PUMP-9 is not installed at a functional location")
    await start_order(client, order, fast_policy())
    await submit_event(client, event(order, "maintenance_requested", equipment="PUMP-9", priority=3,
                                     description="seal leaking"))

    async def child() -> str | None:
        started = [m for m in (await order_summary(client, order.plant, order.number)).maintenance if m.workflow_id]
        return started[0].workflow_id if started else None

    await eventually(child)
    handle = client.get_workflow_handle(await child() or "", result_type=MaintenanceState)

    async def waiting() -> bool:
        return bool((await handle.query(MaintenanceRequestWorkflow.summary)).exceptions)

    await eventually(waiting)
    await handle.signal(MaintenanceRequestWorkflow.retry_step, StepDecision(by="tech.lee"))
    await handle.signal(MaintenanceRequestWorkflow.complete_maintenance, SupervisorAction(by="tech.lee"))
    await eventually(lambda: _done(handle))
    history = await handle.fetch_history()
    (HISTORIES / "maintenance_request_exception.json").write_text(history.to_json())


@pytest.mark.skipif(not os.environ.get("PLANTBRIDGE_RECORD_HISTORY"), reason="records only on request")
async def test_record_history_maintenance_completion_audit(client: Client, worker: object,
                                                          reference: MemoryStore) -> None:
    """A `MaintenanceRequest` completed by a named technician: the completion is audited (patch
    `maintenance-completion-audit`)."""
    order = new_order(components=False)
    await start_order(client, order, fast_policy())
    await submit_event(client, event(order, "maintenance_requested", equipment="PUMP-7", priority=3,
                                     description="bearing noise"))

    async def child() -> str | None:
        started = [m for m in (await order_summary(client, order.plant, order.number)).maintenance if m.workflow_id]
        return started[0].workflow_id if started else None

    await eventually(child)
    handle = client.get_workflow_handle(await child() or "", result_type=MaintenanceState)
    await handle.signal(MaintenanceRequestWorkflow.complete_maintenance,
                        SupervisorAction(by="tech.lee", reason="bearing replaced"))
    await eventually(lambda: _done(handle))
    history = await handle.fetch_history()
    (HISTORIES / "maintenance_completion_audit.json").write_text(history.to_json())


@pytest.mark.skipif(not os.environ.get("PLANTBRIDGE_RECORD_HISTORY"), reason="records only on request")
async def test_record_history_order_changes(client: Client, worker: object, reference: MemoryStore) -> None:
    """Patch `order-changes`: the ERP raises the quantity, an older notice is ignored, then TECO."""
    from tests.test_saga_order_changes import change_in_erp, notice

    order = new_order(version="20260301080000")
    reference.orders[order.number] = order
    handle = await start_order(client, order, fast_policy())
    await submit_event(client, event(order, "operation_confirmed", operation="0010", yield_qty=qty(90)))
    raised = change_in_erp(reference, order, "20260301090000", quantity=qty(120), planned=120)
    await handle.signal("order_changed", notice(raised))

    async def applied() -> bool:
        return (await order_summary(client, order.plant, order.number)).order.quantity.quantity == 120

    await eventually(applied)
    await handle.signal("order_changed", notice(order))  # the older version: ignored
    await submit_event(client, event(order, "operation_confirmed", operation="0010", yield_qty=qty(30), final=True))
    teco = change_in_erp(reference, raised, "20260301100000", erp_status={"technically_completed": True})
    await handle.signal("order_changed", notice(teco))
    await eventually(lambda: _done(handle), timeout=60)
    history = await handle.fetch_history()
    (HISTORIES / "production_order_changes.json").write_text(history.to_json())


@pytest.mark.skipif(not os.environ.get("PLANTBRIDGE_RECORD_HISTORY"), reason="records only on request")
async def test_record_history_temporal_cancel(client: Client, worker: object, reference: MemoryStore) -> None:
    """Patch `temporal-cancel-compensates`: a cancellation requested through Temporal (as the UI sends it)
    after dispatch and staging: recall and release compensate, audited as `temporal-ui`."""
    order = new_order()
    handle = await start_order(client, order, fast_policy())
    await submit_event(client, event(order, "operation_started", operation="0010"))

    async def staged() -> bool:
        summary = await order_summary(client, order.plant, order.number)
        return {s.kind.value for s in summary.steps if s.status == "done"} >= {"mes.dispatch", "wms.stage"}

    await eventually(staged)
    await handle.cancel()
    await eventually(lambda: _done(handle))
    history = await handle.fetch_history()
    (HISTORIES / "production_order_temporal_cancel.json").write_text(history.to_json())


@pytest.mark.skipif(not os.environ.get("PLANTBRIDGE_RECORD_HISTORY"), reason="records only on request")
async def test_record_history_event_signal_closed(client: Client, worker: object) -> None:
    """Patch `plant-event-signal-closed`: a plant event sent as a signal is refused and audited; the order
    then completes through `submit_event`."""
    order = new_order(components=False)
    handle = await start_order(client, order, fast_policy())
    await handle.signal("plant_event", event(order, "quality_disposition", decision="release", source="qms-forged"))
    await _finish_and_record(client, order, handle, "production_order_event_signal_closed.json")


@pytest.mark.skipif(not os.environ.get("PLANTBRIDGE_RECORD_HISTORY"), reason="records only on request")
async def test_record_history_release_reads_order(client: Client, worker: object, reference: MemoryStore) -> None:
    """Patch `release-reads-order`: a planned saga released by a key-only `order_released`, reading its order."""
    from plantbridge.canonical.order import OrderReleaseNotice

    planned = new_order(components=False, released=False)
    handle = await start_order(client, planned, fast_policy())
    reference.orders[planned.number] = planned.model_copy(update={"released": True})
    await handle.signal("order_released", OrderReleaseNotice(plant=planned.plant, order=planned.number))

    async def released() -> bool:
        return (await order_summary(client, planned.plant, planned.number)).state.value == "released"

    await eventually(released)
    await submit_event(client, event(planned, "operation_confirmed", operation="0010", yield_qty=qty(100),
                                     final=True))
    await submit_event(client, event(planned, "operation_confirmed", operation="0020", yield_qty=qty(100),
                                     final=True))
    await eventually(lambda: _done(handle), timeout=60)
    history = await handle.fetch_history()
    (HISTORIES / "production_order_release_reads_order.json").write_text(history.to_json())


@pytest.mark.skipif(not os.environ.get("PLANTBRIDGE_RECORD_HISTORY"), reason="records only on request")
async def test_record_history_batched(client: Client, worker: object, reference: MemoryStore) -> None:
    """Patches `audit-notes-batched`, `acknowledge-once-per-trigger` (issue 17): audit
    notes of a hold and its disposition written by one local activity; a final confirmation posting its
    buffered partial and flushing buffered consumption is acknowledged once, naming all three events."""
    order = new_order()
    policy = fast_policy(partial_confirmations="aggregate", consumption="aggregate",
                         aggregate_every=timedelta(hours=1))
    handle = await start_order(client, order, policy)
    partial = event(order, "operation_confirmed", operation="0010", yield_qty=qty(40))
    consumed = event(order, "material_consumed", material="RM-SEAL", quantity=qty(40))
    for ev in (partial, consumed):
        await submit_event(client, ev)
    await submit_event(client, event(order, "quality_hold", reason="scratch on surface"))
    await submit_event(client, event(order, "quality_disposition", decision="release", source="qms-test"))
    final = event(order, "operation_confirmed", operation="0010", yield_qty=qty(60), final=True)
    await submit_event(client, final)
    await submit_event(client, event(order, "operation_confirmed", operation="0020", yield_qty=qty(100), final=True))
    await eventually(lambda: _done(handle))
    acks = await reference.calls("mes", "acknowledge", order.number)
    assert len(acks) == 2, acks  # the final 0010 with its partial and the consumption; the final 0020
    first = acks[0].payload
    assert {first["event_id"], *first["also"]} == {final.event_id, partial.event_id, consumed.event_id}
    assert len(first["documents_by_event"][consumed.event_id]) == 1  # its own goods issue, not the confirmation
    history = await handle.fetch_history()
    (HISTORIES / "production_order_batched.json").write_text(history.to_json())


@pytest.mark.skipif(not os.environ.get("PLANTBRIDGE_RECORD_HISTORY"), reason="records only on request")
async def test_record_history_step_inputs(client: Client, worker: object, reference: MemoryStore) -> None:
    """Patch `step-inputs-trimmed` (issue 17): dispatch and staging carry the components, a confirmation,
    the completion postings and a maintenance child's input do not."""
    order = new_order()
    handle = await start_order(client, order, fast_policy())
    await submit_event(client, event(order, "maintenance_requested", equipment="PRESS-2", priority=3,
                                     description="oil leak"))
    await _finish_and_record(client, order, handle, "production_order_step_inputs.json")


@pytest.mark.skipif(not os.environ.get("PLANTBRIDGE_RECORD_HISTORY"), reason="records only on request")
async def test_record_history_finished_steps_bounded(client: Client, worker: object) -> None:
    """Patch `finished-steps-bounded` (issue 17): 105 inspections; the oldest finished ones are forgotten."""
    order = new_order(components=False)
    handle = await start_order(client, order, fast_policy())
    for _ in range(105):
        await submit_event(client, event(order, "quality_result", passed=True))

    async def forgotten() -> bool:
        summary = await order_summary(client, order.plant, order.number)
        return sum(s.kind.value == "qms.inspection" for s in summary.steps) == 100

    await eventually(forgotten)
    await _finish_and_record(client, order, handle, "production_order_finished_steps_bounded.json")


async def _finish_and_record(client: Client, order: ProductionOrder, handle: Any, name: str) -> None:
    """Both operations finally confirmed (100 each), the order posted, its history written to `name`."""
    for op in ("0010", "0020"):
        await submit_event(client, event(order, "operation_confirmed", operation=op, yield_qty=qty(100), final=True))
    await eventually(lambda: _done(handle), timeout=60)
    history = await handle.fetch_history()
    (HISTORIES / name).write_text(history.to_json())


@pytest.mark.skipif(not os.environ.get("PLANTBRIDGE_RECORD_HISTORY"), reason="records only on request")
async def test_record_history_release_hold_ending(client: Client, worker: object, reference: MemoryStore) -> None:
    """Patch `release-hold-ignored-when-ending`: a release_hold reaching an order on hold that is being cancelled."""
    from tests.test_saga_hold_cancel import release_hold_while_cancelling

    handle = await release_hold_while_cancelling(client, reference, unblock_failures=2)
    await eventually(lambda: _done(handle), timeout=60)
    history = await handle.fetch_history()
    (HISTORIES / "production_order_release_hold_ending.json").write_text(history.to_json())


@pytest.mark.skipif(not os.environ.get("PLANTBRIDGE_RECORD_HISTORY"), reason="records only on request")
async def test_record_history_unknown_material(client: Client, worker: object, reference: MemoryStore) -> None:
    """Policy `unknown_material: exception`: a consumption held, retried; another skipped; then posted."""
    order = new_order()
    handle = await start_order(client, order, fast_policy(unknown_material="exception"))
    await submit_event(client, event(order, "material_consumed", material="RM-SEAL", quantity=qty(5)))
    await submit_event(client, event(order, "material_consumed", material="RM-OIL", quantity=qty(2)))
    [exc] = (await order_summary(client, order.plant, order.number)).open_exceptions
    await handle.signal("resolve_exception", ExceptionResolution(exception_id=exc.id, action="retry", by="anna"))

    async def settled() -> bool:
        return not (await order_summary(client, order.plant, order.number)).open_exceptions

    await eventually(settled)
    await submit_event(client, event(order, "material_consumed", material="RM-GLUE", quantity=qty(1)))
    [glue] = (await order_summary(client, order.plant, order.number)).open_exceptions
    await handle.signal("resolve_exception", ExceptionResolution(exception_id=glue.id, action="skip", by="anna"))
    await eventually(settled)
    await submit_event(client, event(order, "operation_confirmed", operation="0010", yield_qty=qty(100), final=True))
    await submit_event(client, event(order, "operation_confirmed", operation="0020", yield_qty=qty(100), final=True))
    await eventually(lambda: _done(handle))
    history = await handle.fetch_history()
    (HISTORIES / "production_order_unknown_material.json").write_text(history.to_json())


@pytest.mark.skipif(not os.environ.get("PLANTBRIDGE_RECORD_HISTORY"), reason="records only on request")
async def test_record_history_local_steps(client: Client, worker: object, reference: MemoryStore) -> None:
    """Patch `local-plant-system-steps` (issue 17): plant-system steps as local activities. The MES refuses the
    dispatch (parked, retried by a supervisor), the WMS staging fails once and is retried after a backoff on a
    workflow timer, acknowledgements and the completion's transfers follow; ERP postings stay activities."""
    order = new_order()
    await reference.add_rule("mes", "dispatch", order=order.number, code="MES-409", times=1,
                             message="work center ASSY-01 has no shift planned")
    await reference.add_rule("wms", "stage", order=order.number, kind="transient", times=1,
                             message="WMS 503 Service Unavailable")
    policy = fast_policy(retry_initial=timedelta(seconds=3), retry_max_interval=timedelta(seconds=3))
    handle = await start_order(client, order, policy)

    async def parked() -> list[Any]:
        return (await order_summary(client, order.plant, order.number)).open_exceptions

    [exc] = await eventually(parked)
    await handle.signal("resolve_exception", ExceptionResolution(exception_id=exc.id, action="retry", by="anna"))
    await submit_event(client, event(order, "operation_started", operation="0010"))
    await _finish_and_record(client, order, handle, "production_order_local_steps.json")


async def _done(handle: object) -> bool:
    return (await handle.describe()).status.name == "COMPLETED"  # type: ignore[attr-defined]


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("*.json")), ids=lambda p: p.name)
async def test_recorded_history_replays(path: Path) -> None:
    await assert_replays(WorkflowHistory.from_json("production-order:replay", path.read_text()))
