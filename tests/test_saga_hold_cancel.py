"""Quality holds block completion and WMS availability; cancellation compensates in reverse order;
SLA timers alert and escalate."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from temporalio.client import Client, WorkflowHandle

from plantbridge.canonical import OrderState, SupervisorAction
from plantbridge.client import list_orders, order_summary, start_order, submit_event
from plantbridge.connectors.memory import MemoryStore
from plantbridge.store import AuditTrail
from tests.conftest import TASK_QUEUE, event, fast_policy, new_order, qty
from tests.support import eventually


async def _state(client: Client, order: object, expected: OrderState) -> bool:
    summary = await order_summary(client, order.plant, order.number)  # type: ignore[attr-defined]
    return summary.state is expected


async def test_hold_blocks_completion_until_release_hold(
    client: Client, worker: object, reference: MemoryStore, audit: AuditTrail
) -> None:
    order = new_order(components=False)
    handle = await start_order(client, order, fast_policy())
    ack = await submit_event(client, event(order, "quality_result", passed=False, characteristics=[
        {"name": "bore diameter", "value": "40.12", "unit": "MMT", "ok": False}]))
    assert ack.order_state is OrderState.QUALITY_HOLD
    # Work finishes during the hold: confirmations post, completion waits.
    for op in ("0010", "0020"):
        done = await submit_event(client, event(order, "operation_confirmed", operation=op, yield_qty=qty(100),
                                                final=True))
        assert done.status == "accepted" and done.erp is not None and done.erp.status == "posted"
    summary = await order_summary(client, order.plant, order.number)
    assert summary.state is OrderState.QUALITY_HOLD and summary.hold is not None
    assert "bore diameter" in summary.hold.reason
    completion = [s for s in summary.steps if s.event_id == "completion"]
    assert completion and all(s.status == "pending" for s in completion)
    wms = Counter(c.operation for c in await reference.calls(system="wms", order=order.number))
    assert wms["block"] == 1 and wms["transfer"] == 0 and wms["shipment_ready"] == 0
    assert not await reference.calls(system="erp", operation="goods_receipt", order=order.number)

    await handle.signal("release_hold", SupervisorAction(by="qa.lead", reason="re-measured, in tolerance"))
    result = await handle.result()
    assert result.state is OrderState.POSTED
    erp = Counter(c.operation for c in await reference.calls(system="erp", order=order.number))
    assert erp == {"confirm_operation": 2, "usage_decision": 1, "goods_receipt": 1, "complete_order": 1}
    wms_calls = [c.operation for c in await reference.calls(system="wms", order=order.number)]
    assert wms_calls.index("unblock") < wms_calls.index("transfer") < wms_calls.index("shipment_ready")
    actions = {r.action: r for r in await audit.records(workflow_id=handle.id)}
    assert actions["release_hold"].actor == "qa.lead"
    assert actions["quality_disposition"].detail["decision"] == "release"
    assert "quality_hold" in actions


async def test_disposition_event_scrap_and_listing_by_state(
    client: Client, worker: object, reference: MemoryStore, audit: AuditTrail
) -> None:
    held, running = new_order(components=False), new_order(components=False)
    h1 = await start_order(client, held, fast_policy())
    await start_order(client, running, fast_policy())
    await submit_event(client, event(held, "quality_hold", reason="customer complaint 8812"))
    await submit_event(client, event(running, "operation_started", operation="0010"))

    async def only_held_listed() -> bool:
        ids = await list_orders(client, "Plant='1000' AND OrderState='quality_hold'")
        return h1.id in ids and f"production-order:1000:{running.number}" not in ids

    await eventually(only_held_listed)
    ids = await list_orders(client, "Plant='1000' AND OrderState='quality_hold'")
    for wf_id in ids:  # every listed order served by this suite's worker really is on hold
        if (await client.get_workflow_handle(wf_id).describe()).task_queue != TASK_QUEUE:
            continue  # another test's order, whose worker has stopped: no one answers its queries
        plant, number = wf_id.split(":")[1:]
        assert (await order_summary(client, plant, number)).state is OrderState.QUALITY_HOLD

    disposition = event(held, "quality_disposition", decision="scrap", quantity=qty(4), reason="SCR-QA")
    ack = await submit_event(client, disposition)
    assert ack.status == "accepted" and ack.order_state is OrderState.RELEASED
    assert ack.erp is not None and ack.erp.status == "posted" and len(ack.erp.documents) == 2
    scrap = await reference.calls(system="erp", operation="goods_movement", order=held.number)
    assert scrap[0].payload["items"][0]["movement_type"] == "551"
    ud = await reference.calls(system="erp", operation="usage_decision", order=held.number)
    assert ud[0].payload["decision"] == "scrap"

    async def acknowledged() -> bool:
        acks = await reference.calls(system="mes", operation="acknowledge", order=held.number)
        return any(a.payload["event_id"] == disposition.event_id for a in acks)

    await eventually(acknowledged)
    # One business acknowledgement for the event, naming both of its postings (usage decision, 551).
    acks = [a.payload for a in await reference.calls(system="mes", operation="acknowledge", order=held.number)
            if a.payload["event_id"] == disposition.event_id]
    assert len(acks) == 1 and sorted(acks[0]["documents"]) == sorted(ack.erp.documents)
    assert any(r.action == "quality_disposition" and r.actor == "mes-test" for r in await audit.records(
        workflow_id=h1.id))


async def test_cancel_runs_compensations_in_reverse_order(
    client: Client, worker: object, reference: MemoryStore, audit: AuditTrail
) -> None:
    order = new_order(components=False)
    handle = await start_order(client, order, fast_policy())
    await submit_event(client, event(order, "operation_started", operation="0010"))
    await submit_event(client, event(order, "quality_hold", reason="contamination suspected"))

    async def hold_reached_systems() -> bool:
        summary = await order_summary(client, order.plant, order.number)
        return all(s.finished for s in summary.steps)

    await eventually(hold_reached_systems)
    await handle.signal("cancel_order", SupervisorAction(by="planner.kim", reason="customer cancelled"))
    result = await handle.result()
    assert result.state is OrderState.CANCELLED
    calls = [(c.system, c.operation) for c in await reference.calls(order=order.number)
             if c.system in ("mes", "wms")]
    done, undo = calls[:4], calls[4:]
    assert set(done) == {("mes", "dispatch"), ("wms", "stage"), ("wms", "block"), ("mes", "hold")}
    # The reverse of the order in which the saga saw the steps finish: the block (after the hold
    # event, so last) is lifted first; dispatch and staging (run at once by two lanes) are undone in
    # the reverse of their recorded completion.
    inverse = {"mes.dispatch": ("mes", "recall"), "wms.stage": ("wms", "release_staging"),
               "wms.block": ("wms", "unblock")}
    finished = [st for st in result.steps if st.status == "done" and not st.compensation
                and st.kind.value in inverse]
    order = sorted(finished, key=lambda st: (st.finished_at, result.steps.index(st)), reverse=True)
    assert undo == [inverse[st.kind.value] for st in order]
    assert undo[0] == ("wms", "unblock")
    records = await audit.records(workflow_id=handle.id)
    cancel = next(r for r in records if r.action == "cancel_order")
    assert cancel.actor == "planner.kim" and cancel.detail["reason"] == "customer cancelled"
    assert any(r.action == "order_cancelled" and r.detail["compensations"] == 3 for r in records)


async def test_sla_timers_alert_and_escalate(client: Client, worker: object, reference: MemoryStore) -> None:
    order = new_order(components=False)
    policy = fast_policy(release_start_sla=timedelta(seconds=1), escalate_after=timedelta(seconds=1),
                         hold_sla=timedelta(seconds=1))
    await start_order(client, order, policy)

    async def escalated(topic: str) -> bool:
        summary = await order_summary(client, order.plant, order.number)
        return {a.level for a in summary.alerts if a.topic == topic} == {1, 2}

    await eventually(lambda: escalated("release_not_started"))
    await submit_event(client, event(order, "quality_hold", reason="visual defect"))
    await eventually(lambda: escalated("hold_unresolved"))

    async def sent() -> Counter[tuple[str, int]]:
        """The alerts the notification system received (a step after the saga notes the alert: on a loaded
        machine it lands a moment later)."""
        alerts = [c.payload for c in await reference.calls(system="notify", order=order.number)]
        return Counter((a["topic"], a["level"]) for a in alerts)

    await eventually(lambda: sent_all(sent), what="the escalated alerts sent")
    topics = await sent()
    assert topics[("release_not_started", 1)] == 1 and topics[("release_not_started", 2)] == 1
    assert topics[("hold_unresolved", 2)] == 1


async def sent_all(sent: Callable[[], Awaitable[Counter[tuple[str, int]]]]) -> bool:
    topics = await sent()
    return all(topics[key] for key in (("release_not_started", 1), ("release_not_started", 2),
                                       ("hold_unresolved", 2)))


async def test_posting_overdue_alerts(client: Client, worker: object, reference: MemoryStore) -> None:
    order = new_order(components=False)
    await reference.add_rule("erp", "confirm_operation", order=order.number, kind="transient",
                             message="HTTP 503 from the ERP")
    policy = fast_policy(posting_sla=timedelta(seconds=2), escalate_after=timedelta(seconds=2))
    await start_order(client, order, policy)
    ack = await submit_event(client, event(order, "operation_confirmed", operation="0010", yield_qty=qty(1)),
                             ack_wait=timedelta(milliseconds=500))
    assert ack.erp is not None and ack.erp.status == "pending"

    async def overdue() -> bool:
        summary = await order_summary(client, order.plant, order.number)
        return {a.level for a in summary.alerts if a.topic == "posting_overdue"} == {1, 2}

    await eventually(overdue)
    await reference.clear_rules()

    async def posted() -> bool:
        return len(await reference.calls(system="erp", operation="confirm_operation", order=order.number)) == 1

    await eventually(posted)


async def test_release_hold_during_cancellation_is_ignored(
    client: Client, worker: object, reference: MemoryStore, audit: AuditTrail
) -> None:
    """Patch `release-hold-ignored-when-ending`: a `release_hold` (e.g. from the Temporal UI) reaching an order
    that is being cancelled is noted and ignored: no usage decision posted, the order ends `cancelled`
    (before: it disposed the hold during the compensations, or failed every task once `cancelled`)."""
    handle = await release_hold_while_cancelling(client, reference, unblock_failures=3)
    result = await handle.result()
    assert result.state is OrderState.CANCELLED
    assert not await reference.calls(system="erp", operation="usage_decision", order=result.order.number)
    assert any("release_hold ignored" in t.text for t in result.timeline)
    assert "release_hold" not in {r.action for r in await audit.records(workflow_id=handle.id)}


async def release_hold_while_cancelling(client: Client, reference: MemoryStore, *,
                                        unblock_failures: int) -> WorkflowHandle[Any, Any]:
    """An order on hold is cancelled; its first compensation (the unblock) fails `unblock_failures` times, and
    a supervisor's `release_hold` arrives while it compensates. Returns the order's handle."""
    order = new_order(components=False)
    handle = await start_order(client, order, fast_policy())
    await submit_event(client, event(order, "quality_hold", reason="contamination suspected"))

    async def hold_reached_systems() -> bool:
        summary = await order_summary(client, order.plant, order.number)
        return summary.hold is not None and all(s.finished for s in summary.steps)

    await eventually(hold_reached_systems)
    await reference.add_rule("wms", "unblock", order=order.number, kind="transient", times=unblock_failures,
                             message="WMS busy")
    await handle.signal("cancel_order", SupervisorAction(by="planner.kim", reason="customer cancelled"))

    async def compensating() -> bool:
        summary = await order_summary(client, order.plant, order.number)
        return any("compensating" in t.text for t in summary.timeline)

    await eventually(compensating)
    await handle.signal("release_hold", SupervisorAction(by="qa.lead", reason="re-measured"))
    return handle
