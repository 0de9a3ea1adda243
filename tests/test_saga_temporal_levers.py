"""Safe levers from the Temporal UI (issue 15, item 3): what a UI user can do to an order.

A cancellation requested through Temporal itself (the UI's "Request Cancellation", i.e.
RequestCancelWorkflowExecution, sent here with `handle.cancel()`) compensates and audits like
`cancel_order`.
"""

from __future__ import annotations

from temporalio.client import Client

from plantbridge import contract
from plantbridge.canonical import OrderState
from plantbridge.client import order_summary, start_order, submit_event
from plantbridge.connectors.memory import MemoryStore
from plantbridge.store import AuditTrail
from tests.conftest import event, fast_policy, new_order, qty
from tests.support import eventually


async def test_cancellation_requested_in_temporal_compensates_and_audits(
    client: Client, worker: object, reference: MemoryStore, audit: AuditTrail
) -> None:
    order = new_order()
    assert order.components, "the order must stage a component"
    handle = await start_order(client, order, fast_policy())
    await submit_event(client, event(order, "operation_started", operation="0010"))

    async def dispatched_and_staged() -> bool:
        summary = await order_summary(client, order.plant, order.number)
        return {s.kind.value for s in summary.steps if s.status == "done"} >= {"mes.dispatch", "wms.stage"}

    await eventually(dispatched_and_staged)
    await handle.cancel()
    result = await handle.result()  # the workflow completes: the order itself is cancelled
    assert result.state is OrderState.CANCELLED
    assert result.cancel_requested_by == contract.TEMPORAL_UI_ACTOR
    calls = [(c.system, c.operation) for c in await reference.calls(order=order.number)]
    assert ("mes", "recall") in calls and ("wms", "release_staging") in calls
    assert (await handle.describe()).status.name == "COMPLETED"

    async def audited() -> bool:
        actions = {(r.action, r.actor) for r in await audit.records(workflow_id=handle.id)}
        return {("cancel_order", "temporal-ui"), ("order_cancelled", "temporal-ui")} <= actions

    await eventually(audited)
    records = await audit.records(workflow_id=handle.id)
    done = next(r for r in records if r.action == "order_cancelled")
    assert done.detail["compensations"] >= 2


async def test_cancellation_in_temporal_during_a_cancel_lets_it_finish(
    client: Client, worker: object, reference: MemoryStore, audit: AuditTrail
) -> None:
    """A second cancellation (the UI) while `cancel_order` compensates does not cut the compensations off."""
    from plantbridge.canonical import SupervisorAction

    order = new_order()
    for system, operation in (("wms", "release_staging"), ("mes", "recall")):
        await reference.add_rule(system, operation, order=order.number, kind="hang", code="3", times=1, message="slow")
    handle = await start_order(client, order, fast_policy())

    async def staged() -> bool:
        summary = await order_summary(client, order.plant, order.number)
        return {s.kind.value for s in summary.steps if s.status == "done"} >= {"mes.dispatch", "wms.stage"}

    await eventually(staged)
    await handle.signal("cancel_order", SupervisorAction(by="planner.kim", reason="customer cancelled"))

    async def compensating() -> bool:
        summary = await order_summary(client, order.plant, order.number)
        return any(s.compensation and s.status == "running" for s in summary.steps)

    await eventually(compensating)
    await handle.cancel()
    await reference.clear_rules()
    result = await handle.result()
    assert result.state is OrderState.CANCELLED and result.cancel_requested_by == "planner.kim"
    calls = [(c.system, c.operation) for c in await reference.calls(order=order.number)]
    assert ("mes", "recall") in calls and ("wms", "release_staging") in calls
    assert any("goes on" in t.text for t in result.timeline if t.kind == "supervisor")


async def test_plant_event_signal_is_refused_and_audited(
    client: Client, worker: object, reference: MemoryStore, audit: AuditTrail
) -> None:
    """A plant event typed into the UI's "Send a Signal" passes no gateway check: refused, counted, audited."""
    order = new_order(components=False)
    handle = await start_order(client, order, fast_policy())
    disposition = event(order, "quality_disposition", decision="release", source="qms-forged")
    await handle.signal("plant_event", disposition)
    await handle.signal("plant_event", event(order, "operation_confirmed", operation="0010", yield_qty=qty(5)))

    async def refused() -> bool:
        return (await order_summary(client, order.plant, order.number)).events_rejected == 2

    await eventually(refused)
    summary = await order_summary(client, order.plant, order.number)
    assert summary.events_accepted == 0 and summary.operations["0010"].yield_total == 0
    assert not await reference.calls(system="erp", order=order.number)

    async def audited() -> list[object]:
        return [r for r in await audit.records(workflow_id=handle.id) if r.action == "plant_event_signal_refused"]

    await eventually(lambda: _count(audited, 2))
    forged = next(r for r in await audited() if r.detail["event_id"] == disposition.event_id)  # type: ignore[attr-defined]
    assert forged.actor == contract.SIGNAL_ACTOR and forged.detail["source"] == "qms-forged"  # type: ignore[attr-defined]
    # The gateway's path (the update) still works.
    ack = await submit_event(client, event(order, "operation_confirmed", operation="0010", yield_qty=qty(5)))
    assert ack.status == "accepted"


async def _count(fetch: object, n: int) -> bool:
    return len(await fetch()) == n  # type: ignore[operator]


async def test_order_released_reads_the_order_from_the_erp(
    client: Client, worker: object, reference: MemoryStore
) -> None:
    """`order_released` carries the key only; a whole order sent in (the UI, an old gateway) is not taken."""
    from plantbridge.canonical.order import OrderReleaseNotice

    planned = new_order(released=False)
    handle = await start_order(client, planned, fast_policy())
    released = planned.model_copy(update={"released": True})
    reference.orders[planned.number] = released
    forged = released.model_copy(update={"components": [
        c.model_copy(update={"material": "GOLD-BAR"}) for c in released.components]})
    await handle.signal("order_released", forged)

    async def released_state() -> bool:
        return (await order_summary(client, planned.plant, planned.number)).state is OrderState.RELEASED

    await eventually(released_state)
    summary = await order_summary(client, planned.plant, planned.number)
    assert [c.material for c in summary.order.components] == [c.material for c in released.components]
    assert "GOLD-BAR" not in str(await reference.calls(order=planned.number))
    # A notice for another order is noted and ignored; the key-only notice is what the gateway sends.
    other = new_order(released=False)
    h2 = await start_order(client, other, fast_policy())
    await h2.signal("order_released", OrderReleaseNotice(plant=other.plant, order=planned.number))
    reference.orders[other.number] = other.model_copy(update={"released": True})
    await h2.signal("order_released", OrderReleaseNotice(plant=other.plant, order=other.number, version="1"))

    async def other_released() -> bool:
        return (await order_summary(client, other.plant, other.number)).state is OrderState.RELEASED

    await eventually(other_released)
    timeline = (await order_summary(client, other.plant, other.number)).timeline
    assert any("not this order" in t.text for t in timeline)
