"""The plant's posting policy (aggregated partial confirmations and consumption) and maintenance
requests as `MaintenanceRequest` child workflows (from an event, or from a downtime that lasts)."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from typing import Any

from temporalio.client import Client, WorkflowHandle

from plantbridge.canonical import OrderState, SupervisorAction
from plantbridge.canonical.exceptions import StepDecision
from plantbridge.canonical.order import ProductionOrder
from plantbridge.canonical.policy import PlantPolicy, SparePart
from plantbridge.client import order_summary, start_order, submit_event
from plantbridge.connectors.memory import MemoryStore
from plantbridge.store.audit import AuditTrail
from plantbridge.workflows.maintenance import MaintenanceRequestWorkflow, MaintenanceState
from tests.conftest import event, fast_policy, new_order, qty
from tests.support import eventually


async def test_partial_confirmations_and_consumption_are_aggregated(
    client: Client, worker: object, reference: MemoryStore
) -> None:
    order = new_order()
    policy = fast_policy(partial_confirmations="aggregate", consumption="aggregate",
                         aggregate_every=timedelta(seconds=2))
    handle = await start_order(client, order, policy)
    events = 0

    async def send(ev_type: str, **fields: object) -> object:
        nonlocal events
        events += 1
        ack = await submit_event(client, event(order, ev_type, **fields))
        assert ack.status == "accepted", ack
        return ack

    first = await send("operation_confirmed", operation="0010", yield_qty=qty(10), scrap_qty=qty(1))
    assert first.erp.status == "pending" and "aggregated" in first.erp.message  # type: ignore[attr-defined]
    await send("operation_confirmed", operation="0010", yield_qty=qty(15))
    await send("material_consumed", material="RM-SEAL", quantity=qty(20), storage_location="0001")
    await send("material_consumed", material="RM-SEAL", quantity=qty(5), storage_location="0001")
    assert await reference.calls(system="erp", order=order.number) == []

    async def interval_flushed() -> bool:
        return len(await reference.calls(system="erp", order=order.number)) == 2

    await eventually(interval_flushed)  # after `aggregate_every`: one confirmation, one goods issue
    erp = await reference.calls(system="erp", order=order.number)
    conf = next(c.payload for c in erp if c.operation == "confirm_operation")
    assert conf["yield_qty"]["quantity"] == "25" and conf["scrap_qty"]["quantity"] == "1" and not conf["final"]
    assert conf["goods_movements"][0]["quantity"]["quantity"] == "13.000"  # 50 KGM x 26/100 backflushed
    issue = next(c.payload for c in erp if c.operation == "goods_movement")
    assert issue["items"] == [{"material": "RM-SEAL", "quantity": {"quantity": "25", "uom": "H87"},
                               "movement_type": "261", "storage_location": "0001", "batch": None,
                               "reservation": None, "reservation_item": None}]

    # More partials, then the operation ends: the final posting carries them.
    for n in (20, 30):
        await send("operation_confirmed", operation="0010", yield_qty=qty(n))
    final = await send("operation_confirmed", operation="0010", yield_qty=qty(25), final=True)
    assert final.erp.status == "posted"  # type: ignore[attr-defined]
    await send("operation_confirmed", operation="0020", yield_qty=qty(100), final=True)
    result = await asyncio.wait_for(handle.result(), 30)
    assert result.state is OrderState.POSTED
    erp = await reference.calls(system="erp", order=order.number)
    confs = [c.payload for c in erp if c.operation == "confirm_operation"]
    assert [c["yield_qty"]["quantity"] for c in confs] == ["25", "75", "100"]
    assert Counter(c.operation for c in erp) == {"confirm_operation": 3, "goods_movement": 1, "goods_receipt": 1,
                                                 "complete_order": 1}
    # 8 events would have been 8 postings one by one; aggregated they are 4 (plus GR and TECO).
    assert events == 8 and sum(c.operation in ("confirm_operation", "goods_movement") for c in erp) == 4
    acks = [c.payload for c in await reference.calls(system="mes", operation="acknowledge", order=order.number)]
    acknowledged = {a["event_id"] for a in acks} | {e for a in acks for e in a["also"]}
    assert len(acknowledged) == events  # every event heard its ERP outcome


async def test_maintenance_request_runs_as_child_workflow(
    client: Client, worker: object, reference: MemoryStore
) -> None:
    order = new_order(components=False)
    policy = fast_policy(spare_parts={"PUMP-7": [SparePart(material="SEAL-KIT-7", quantity=Decimal(2))]})
    handle = await start_order(client, order, policy)
    ack = await submit_event(client, event(order, "maintenance_requested", equipment="PUMP-7", priority=1,
                                           work_center="ASSY-01", description="bearing noise, vibration high"))
    assert ack.status == "accepted"

    async def child_started() -> bool:
        summary = await order_summary(client, order.plant, order.number)
        return bool(summary.maintenance) and summary.maintenance[0].status == "started"

    await eventually(child_started)
    record = (await order_summary(client, order.plant, order.number)).maintenance[0]
    child = client.get_workflow_handle(record.workflow_id or "", result_type=MaintenanceState)

    async def child_waiting() -> bool:
        state = await child.query("summary", result_type=MaintenanceState)
        return all(s.status == "done" for s in state.steps) and len(state.steps) == 2 and state.alerts >= 1

    await eventually(child_waiting)
    notif = await reference.calls(system="erp", operation="maintenance_notification", order=order.number)
    assert len(notif) == 1 and notif[0].payload["equipment"] == "PUMP-7"
    reserve = await reference.calls(system="wms", operation="reserve", order=order.number)
    assert reserve[0].payload["items"][0]["material"] == "SEAL-KIT-7"
    # The order goes on without waiting for the repair.
    await submit_event(client, event(order, "operation_confirmed", operation="0010", yield_qty=qty(100), final=True))
    await submit_event(client, event(order, "operation_confirmed", operation="0020", yield_qty=qty(100), final=True))
    assert (await asyncio.wait_for(handle.result(), 30)).state is OrderState.POSTED
    await child.signal("complete_maintenance", SupervisorAction(by="tech.lee", reason="bearing replaced"))
    done = await asyncio.wait_for(child.result(), 20)
    assert done.status == "completed" and done.completed_by == "tech.lee"


async def test_long_downtime_alerts_while_it_lasts_and_requests_maintenance(
    client: Client, worker: object, reference: MemoryStore
) -> None:
    order = new_order(components=False)
    await start_order(client, order, fast_policy(long_downtime=timedelta(seconds=1)))
    await submit_event(client, event(order, "downtime_started", work_center="ASSY-01", equipment="PRESS-2",
                                     reason="BREAKDOWN"))

    async def alerted() -> bool:
        summary = await order_summary(client, order.plant, order.number)
        return any(a.topic == "downtime" for a in summary.alerts) and bool(summary.maintenance)

    await eventually(alerted)
    await submit_event(client, event(order, "downtime_ended", work_center="ASSY-01"))
    summary = await order_summary(client, order.plant, order.number)
    assert [a.topic for a in summary.alerts].count("downtime") == 1
    assert summary.maintenance[0].equipment == "PRESS-2" and summary.maintenance[0].priority == 2
    alerts = [c.payload for c in await reference.calls(system="notify", order=order.number)
              if c.payload["topic"] == "downtime"]
    assert len(alerts) == 1 and "BREAKDOWN" in alerts[0]["message"]


async def test_maintenance_child_rejected_step_opens_an_exception_with_identity_and_audit(
    client: Client, worker: object, reference: MemoryStore, audit: AuditTrail
) -> None:
    """The child parks a refused step like the order saga: `EXC-1`, who retried it, audited."""
    order = new_order(components=False)
    await reference.add_rule("erp", "maintenance_notification", order=order.number, code="IW/123", times=1,
                             message="Equipment PUMP-9 is not installed at a functional location")
    child = await _maintenance_child(client, order, fast_policy(), equipment="PUMP-9", description="seal leaking")

    async def state() -> MaintenanceState:
        return await child.query(MaintenanceRequestWorkflow.summary)

    async def waiting() -> bool:
        return (await state()).status == "waiting_for_decision" and bool((await state()).exceptions)

    await eventually(waiting)
    [exc] = (await state()).exceptions
    assert exc.id == "EXC-1" and exc.status == "open" and exc.erp_code == "IW/123"
    assert "not installed" in exc.message
    await child.signal(MaintenanceRequestWorkflow.retry_step, StepDecision(by="tech.lee", comment="installed"))

    async def retried() -> bool:
        return (await state()).steps[0].status == "done"

    await eventually(retried)
    [exc] = (await state()).exceptions
    assert exc.status == "resolved" and exc.resolved_by == "tech.lee" and exc.closed_at is not None
    records = {r.action: r for r in await audit.records(workflow_id=child.id)}
    assert records["exception_opened"].actor == "plantbridge"
    assert records["exception_retry"].actor == "tech.lee"
    await child.signal(MaintenanceRequestWorkflow.complete_maintenance, SupervisorAction(by="tech.lee"))
    assert (await asyncio.wait_for(child.result(), 20)).status == "completed"


async def test_maintenance_child_still_takes_decisions_without_arguments(
    client: Client, worker: object, reference: MemoryStore
) -> None:
    """Senders of the old payload shape (`skip_step` with no argument) keep working."""
    order = new_order(components=False)
    await reference.add_rule("erp", "maintenance_notification", order=order.number, code="IW/124", times=5,
                             message="Equipment PUMP-8 is locked")
    child = await _maintenance_child(client, order, fast_policy(), equipment="PUMP-8", description="noise")

    async def waiting() -> bool:
        return (await child.query(MaintenanceRequestWorkflow.summary)).status == "waiting_for_decision"

    await eventually(waiting)
    await child.signal("skip_step")  # the old shape: no argument

    async def skipped() -> bool:
        return (await child.query(MaintenanceRequestWorkflow.summary)).steps[0].status == "skipped"

    await eventually(skipped)
    [exc] = (await child.query(MaintenanceRequestWorkflow.summary)).exceptions
    assert exc.status == "skipped" and exc.resolved_by == "maintenance"


async def test_maintenance_child_escalates_when_its_sla_passes(client: Client, worker: object) -> None:
    """Alert at the request, again when `maintenance_sla` passes, and once more after another period."""
    order = new_order(components=False)
    child = await _maintenance_child(client, order, fast_policy(maintenance_sla=timedelta(seconds=1)),
                                     equipment="FAN-1", description="belt slipping")

    async def escalated() -> bool:
        return (await child.query(MaintenanceRequestWorkflow.summary)).alerts == 3

    await eventually(escalated)
    await child.signal(MaintenanceRequestWorkflow.complete_maintenance, SupervisorAction(by="tech.lee"))
    done = await asyncio.wait_for(child.result(), 20)
    assert done.status == "completed" and done.alerts == 3


async def _maintenance_child(client: Client, order: ProductionOrder, policy: PlantPolicy, *, equipment: str,
                             description: str) -> WorkflowHandle[Any, MaintenanceState]:
    """Start the order, request maintenance (priority 3) and return the `MaintenanceRequest` child it started."""
    await start_order(client, order, policy)
    await submit_event(client, event(order, "maintenance_requested", equipment=equipment, priority=3,
                                     description=description))

    async def child_id() -> str | None:
        summary = await order_summary(client, order.plant, order.number)
        started = [m for m in summary.maintenance if m.status == "started"]
        return started[0].workflow_id if started else None

    await eventually(child_id)
    return client.get_workflow_handle(await child_id() or "", result_type=MaintenanceState)
