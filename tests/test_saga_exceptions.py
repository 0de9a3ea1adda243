"""Business rejections open exceptions a supervisor can see and act on: retry, skip, override."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import Client

from plantbridge.canonical import ExceptionResolution, OrderState, SagaState
from plantbridge.client import current_details, list_orders, order_summary, start_order, submit_event
from plantbridge.connectors.memory import MemoryStore
from plantbridge.store import AuditTrail
from tests.conftest import event, fast_policy, new_order, qty
from tests.support import eventually


async def open_exceptions_attr(client: Client, workflow_id: str) -> int | None:
    desc = await client.get_workflow_handle(workflow_id).describe()
    from plantbridge.workflows.search_attributes import OPEN_EXCEPTIONS

    return desc.typed_search_attributes.get(OPEN_EXCEPTIONS)


async def test_rejection_opens_exception_and_retry_posts_once(
    client: Client, worker: object, reference: MemoryStore, audit: AuditTrail
) -> None:
    order = new_order()
    await reference.add_rule("erp", "confirm_operation", order=order.number, code="RU/505",
                             message="Posting period 011/2026 is not open for company code 1000")
    handle = await start_order(client, order, fast_policy())
    ack = await submit_event(client, event(order, "operation_confirmed", operation="0010", yield_qty=qty(20)))
    assert ack.status == "accepted"
    assert ack.erp is not None and ack.erp.status == "rejected"
    assert "Posting period 011/2026 is not open" in (ack.erp.message or "")

    summary = await order_summary(client, order.plant, order.number)
    [exc] = summary.open_exceptions
    assert exc.erp_code == "RU/505" and exc.step_kind == "erp.confirm_operation"
    await eventually(lambda: _attr_is(client, handle.id, 1))
    current = await current_details(client, order.plant, order.number)
    assert exc.id in current and "Posting period" in current and '"action": "retry"' in current
    found = await list_orders(client, f"Plant='1000' AND OpenExceptions > 0 AND OrderNumber='{order.number}'")
    assert found == [handle.id]

    # A retry while the cause is still there is rejected again, and the exception stays open.
    await handle.signal("resolve_exception", ExceptionResolution(exception_id=exc.id, action="retry", by="anna"))
    await eventually(lambda: _exc_attempts(client, order.plant, order.number, exc.id, 2))
    # The period is opened in the ERP; the supervisor retries; it posts once.
    await reference.clear_rules()
    await handle.signal("resolve_exception", ExceptionResolution(exception_id=exc.id, action="retry", by="anna"))
    await eventually(lambda: _attr_is(client, handle.id, 0))
    confirmations = await reference.calls(system="erp", operation="confirm_operation", order=order.number)
    assert len(confirmations) == 1
    # Exactly once is the connector's doing (the ERP would accept a second posting with the same key):
    # every re-post was preceded by a look-up of the external key, which found nothing to replay.
    assert [(e.action, e.outcome) for e in reference.entries(key=confirmations[0].external_key)] == [
        ("post", "rejected"), ("lookup", "missing"), ("post", "rejected"), ("lookup", "missing"), ("post", "posted")]
    summary = await order_summary(client, order.plant, order.number)
    assert summary.exceptions[0].status == "resolved" and summary.exceptions[0].resolved_by == "anna"
    assert [s.status for s in summary.steps if s.kind.value == "erp.confirm_operation"] == ["done"]
    actions = [r.action for r in await audit.records(workflow_id=handle.id)]
    assert actions.count("exception_opened") == 2 and actions.count("exception_retry") == 2

    async def acknowledged() -> bool:  # the acknowledgement runs in the MES lane after the posting
        acks = await reference.calls(system="mes", operation="acknowledge", order=order.number)
        return [c.payload["status"] for c in acks] == ["rejected", "rejected", "posted"]

    await eventually(acknowledged, what="MES acknowledgements rejected, rejected, posted")


async def test_skip_and_override_close_exceptions_with_audit(
    client: Client, worker: object, reference: MemoryStore, audit: AuditTrail
) -> None:
    order = new_order()
    await reference.add_rule("erp", "goods_movement", order=order.number, code="M7/021",
                             message="Deficit of SL Unrestricted-use 12 KG : RM-SEAL 1000 0001")
    handle = await start_order(client, order, fast_policy(ack_wait=timedelta(seconds=1)))
    a = await submit_event(client, event(order, "material_consumed", material="RM-SEAL", quantity=qty(12)))
    assert a.erp is not None and a.erp.status == "rejected"
    # ERP postings of an order keep their order: the second waits behind the parked first one.
    b = await submit_event(client, event(order, "material_consumed", material="RM-SEAL", quantity=qty(3)),
                           ack_wait=timedelta(seconds=1))
    assert b.status == "accepted" and b.erp is not None and b.erp.status == "pending"
    [first] = (await order_summary(client, order.plant, order.number)).open_exceptions
    await handle.signal("resolve_exception", ExceptionResolution(exception_id=first.id, action="skip", by="ben",
                                                                 comment="posted manually"))
    await eventually(lambda: _open_count(client, order.plant, order.number, 1, exclude=first.id))
    [second] = (await order_summary(client, order.plant, order.number)).open_exceptions
    await handle.signal("resolve_exception", ExceptionResolution(exception_id=second.id, action="override",
                                                                 by="ben", document="4900001234"))
    await eventually(lambda: _attr_is(client, handle.id, 0))
    summary = await order_summary(client, order.plant, order.number)
    assert [e.status for e in summary.exceptions] == ["skipped", "overridden"]
    moves = [s for s in summary.steps if s.kind.value == "erp.goods_movement"]
    assert [s.status for s in moves] == ["skipped", "overridden"]
    assert moves[1].result is not None and moves[1].result.documents == ["4900001234"]
    assert await reference.calls(system="erp", operation="goods_movement", order=order.number) == []
    records = await audit.records(workflow_id=handle.id)
    skip = next(r for r in records if r.action == "exception_skip")
    assert skip.actor == "ben" and skip.detail["comment"] == "posted manually"
    assert any(r.action == "exception_override" and r.detail["document"] == "4900001234" for r in records)


async def test_transient_errors_are_retried_without_an_exception(
    client: Client, worker: object, reference: MemoryStore
) -> None:
    order = new_order()
    await reference.add_rule("erp", "confirm_operation", order=order.number, kind="transient", times=3,
                             message="Order 4000001 is locked by user MILLER")
    await start_order(client, order, fast_policy())
    ack = await submit_event(client, event(order, "operation_confirmed", operation="0010", yield_qty=qty(5)),
                             ack_wait=timedelta(seconds=15))
    assert ack.erp is not None and ack.erp.status == "posted"
    summary = await order_summary(client, order.plant, order.number)
    assert summary.exceptions == []
    assert len(await reference.calls(system="erp", operation="confirm_operation", order=order.number)) == 1


async def test_lost_answer_is_found_by_its_external_key_not_posted_twice(
    client: Client, worker: object, reference: MemoryStore
) -> None:
    """The ERP posts, the answer is lost (a timeout after the system acted): Temporal retries the activity,
    the connector looks the key up first and replays the document. The in-memory ERP accepts duplicate
    keys, so without that look-up this order would have two confirmations."""
    order = new_order()
    await reference.add_rule("erp", "confirm_operation", order=order.number, kind="lost", times=1,
                             message="read timeout after 30 s (the ERP committed)")
    await start_order(client, order, fast_policy())
    ack = await submit_event(client, event(order, "operation_confirmed", operation="0010", yield_qty=qty(7)),
                             ack_wait=timedelta(seconds=15))
    assert ack.erp is not None and ack.erp.status == "posted"
    [conf] = await reference.calls(system="erp", operation="confirm_operation", order=order.number)
    assert ack.erp.documents == [conf.document]
    assert [(e.action, e.outcome) for e in reference.entries(key=conf.external_key)] == [
        ("post", "lost"), ("lookup", "found")]


async def test_unexpected_error_stops_retrying_and_opens_an_exception(
    client: Client, worker: object, reference: MemoryStore, audit: AuditTrail
) -> None:
    """A connector defect (a KeyError) is retried `unexpected_error_attempts` times, not forever; then the
    step is parked for a supervisor, whose retry after the fix posts it once."""
    order = new_order()
    await reference.add_rule("erp", "goods_movement", order=order.number, kind="crash", message="'MBLNR'")
    handle = await start_order(client, order, fast_policy(unexpected_error_attempts=3))
    ack = await submit_event(client, event(order, "material_consumed", material="RM-SEAL", quantity=qty(12)),
                             ack_wait=timedelta(seconds=20))
    assert ack.erp is not None and ack.erp.status == "rejected", ack
    assert "KeyError" in (ack.erp.message or "") and "MBLNR" in (ack.erp.message or "")
    [exc] = (await order_summary(client, order.plant, order.number)).open_exceptions
    assert exc.step_kind == "erp.goods_movement" and exc.erp_code == "KeyError"
    assert "unexpected error after 3 attempts: KeyError" in exc.message
    crashes = [e for e in reference.entries(order=order.number) if e.operation == "goods_movement"]
    assert [(e.action, e.outcome) for e in crashes] == [
        ("post", "crash"), ("lookup", "missing"), ("post", "crash"), ("lookup", "missing"), ("post", "crash")]
    assert await reference.calls(system="erp", operation="goods_movement", order=order.number) == []

    await reference.clear_rules()  # the connector is fixed
    await handle.signal("resolve_exception", ExceptionResolution(exception_id=exc.id, action="retry", by="anna"))
    await eventually(lambda: _attr_is(client, handle.id, 0))
    [movement] = await reference.calls(system="erp", operation="goods_movement", order=order.number)
    summary = await order_summary(client, order.plant, order.number)
    assert summary.exceptions[0].status == "resolved"
    [step] = [s for s in summary.steps if s.kind.value == "erp.goods_movement"]
    assert step.status == "done" and step.result is not None and step.result.documents == [movement.document]


async def _open_count(client: Client, plant: str, order: str, count: int, exclude: str) -> bool:
    summary = await order_summary(client, plant, order)
    return len([e for e in summary.open_exceptions if e.id != exclude]) == count


async def _attr_is(client: Client, workflow_id: str, value: int) -> bool:
    return await open_exceptions_attr(client, workflow_id) == value


async def _exc_attempts(client: Client, plant: str, order: str, exc_id: str, attempts: int) -> bool:
    summary: SagaState = await order_summary(client, plant, order)
    exc = next(e for e in summary.exceptions if e.id == exc_id)
    return exc.attempts == attempts and exc.status == "open"


async def test_order_state_search_attribute(client: Client, worker: object) -> None:
    order = new_order()
    handle = await start_order(client, order, fast_policy())
    await submit_event(client, event(order, "operation_started", operation="0010"))
    from plantbridge.workflows.search_attributes import ORDER_STATE

    async def in_progress() -> bool:
        return (await handle.describe()).typed_search_attributes.get(ORDER_STATE) == OrderState.IN_PROGRESS.value

    await eventually(in_progress)
