"""Plant events at the saga: duplicates, rejections with reasons, and nothing of them in history."""

from __future__ import annotations

import json
import uuid
from collections import Counter

import pytest
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from plantbridge.canonical import OrderState
from plantbridge.client import order_summary, start_order, submit_event
from plantbridge.connectors.memory import MemoryStore
from tests.conftest import event, fast_policy, new_order, qty


async def history_text(client: Client, workflow_id: str) -> str:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return json.dumps(history.to_json_dict())


async def test_same_event_twice_is_duplicate_and_posts_once(
    client: Client, worker: object, reference: MemoryStore
) -> None:
    order = new_order()
    handle = await start_order(client, order, fast_policy(event_signals=True))
    ev = event(order, "operation_confirmed", operation="0010", yield_qty=qty(10))
    first = await submit_event(client, ev)
    second = await submit_event(client, ev)
    assert first.status == "accepted" and first.erp is not None and first.erp.status == "posted"
    assert first.erp.documents and first.erp.documents[0].startswith("CONF-")
    assert second.status == "duplicate"
    # The same event as a signal (the edge agent's path) changes nothing either.
    await handle.signal("plant_event", ev)
    summary = await order_summary(client, order.plant, order.number)
    assert summary.duplicates == 1 and summary.events_accepted == 1
    assert summary.operations["0010"].yield_total == 10
    confirmations = await reference.calls(system="erp", operation="confirm_operation", order=order.number)
    assert len(confirmations) == 1


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"plant": "2000"}, "belongs to plant 1000"),
        ({"order": "999"}, "this is order"),
        ({"operation": "0030"}, "operation 0030 is not in order"),
        ({"yield_qty": qty(500)}, "over-confirmation"),
        ({"yield_qty": qty(5, "KGM")}, "differs from operation 0010's unit H87"),
    ],
)
async def test_invalid_events_are_rejected_with_reason_and_leave_no_history(
    client: Client, worker: object, change: dict[str, object], reason: str
) -> None:
    order = new_order()
    handle = await start_order(client, order, fast_policy())
    data = {"operation": "0010", "yield_qty": qty(10), **change}
    ev = event(order, "operation_confirmed", **data)
    ack = await submit_event(client, ev, to_workflow=handle.id)
    assert ack.status == "rejected" and reason in (ack.reason or ""), ack
    assert ev.event_id not in await history_text(client, handle.id)
    summary = await order_summary(client, order.plant, order.number)
    assert summary.events_accepted == 0 and summary.state is OrderState.RELEASED


async def test_event_not_allowed_in_state(client: Client, worker: object) -> None:
    order = new_order()
    await start_order(client, order, fast_policy())
    ack = await submit_event(client, event(order, "quality_disposition", decision="release"))
    assert ack.status == "rejected" and "not on quality hold" in (ack.reason or "")
    ok = await submit_event(client, event(order, "operation_confirmed", operation="0010", yield_qty=qty(100),
                                          final=True))
    assert ok.status == "accepted"
    again = await submit_event(client, event(order, "operation_confirmed", operation="0010", yield_qty=qty(1)))
    assert again.status == "rejected" and "finally confirmed" in (again.reason or "")


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("occurred_at", "2026-11-26T10:15:00", "no UTC offset"),
        ("yield_qty", {"quantity": "-5", "uom": "H87"}, "negative"),
        ("event_type", "operation_exploded", "unknown event type"),
    ],
)
async def test_malformed_payloads_never_reach_history(
    client: Client, worker: object, field: str, value: object, expected: str
) -> None:
    """Raw JSON sent straight to the update (bypassing the client's validation) is refused by the
    worker's pydantic converter before the update is accepted; the reason names the problem."""
    order = new_order()
    handle = await start_order(client, order, fast_policy())
    event_id = f"raw-{uuid.uuid4().hex[:12]}"
    raw = {"event_id": event_id, "event_type": "operation_confirmed", "source": "mes-test", "plant": order.plant,
           "order": order.number, "operation": "0010", "occurred_at": "2026-11-26T10:15:00+01:00",
           "yield_qty": {"quantity": "5", "uom": "H87"}, field: value}
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await client.get_workflow_handle(handle.id).execute_update("submit_event", raw)
    cause = info.value.cause
    assert isinstance(cause, ApplicationError) and expected in str(cause.message) + str(cause.cause or "")
    assert event_id not in await history_text(client, handle.id)


async def test_rejected_signal_is_counted_not_applied(client: Client, worker: object) -> None:
    order = new_order()
    handle = await start_order(client, order, fast_policy(event_signals=True))
    await handle.signal("plant_event", event(order, "operation_confirmed", operation="0099", yield_qty=qty(1)))
    await handle.signal("plant_event", event(order, "operation_started", operation="0010"))
    summary = await order_summary(client, order.plant, order.number)
    assert summary.events_rejected == 1 and summary.events_accepted == 1
    assert Counter(t.kind for t in summary.timeline)["rejected"] == 1
    assert summary.state is OrderState.IN_PROGRESS
