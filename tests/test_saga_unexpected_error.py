"""A step whose activity fails with `UnexpectedError` is parked as a supervisor exception, not retried.

The activities here are stand-ins, and they say so: the bounded retry that turns an unknown exception
(a `KeyError` in a connector, say) into a non-retryable `ApplicationError` of type `UnexpectedError`
lives in the activity boundary; this test checks what the saga does with that error, on a real
Temporal server with the real workflow code, on a task queue of its own.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from plantbridge import contract
from plantbridge.canonical import ExceptionResolution
from plantbridge.canonical.commands import StepKind, StepRequest, StepResult
from plantbridge.canonical.saga import AuditNote
from plantbridge.client import order_summary, resolve_exception, start_order, submit_event
from plantbridge.workers.worker import WORKFLOWS
from tests.conftest import event, fast_policy, new_order, qty
from tests.test_saga_exceptions import eventually


def stand_in_activities(calls: Counter[str], fail_first: StepKind) -> list[Callable[..., Awaitable[Any]]]:
    def make(kind: StepKind) -> Callable[[StepRequest], Awaitable[StepResult]]:
        @activity.defn(name=kind.value)
        async def run(req: StepRequest) -> StepResult:
            calls[kind.value] += 1
            if kind is fail_first and calls[kind.value] == 1:
                raise ApplicationError("KeyError: 'AUFNR' (connector bug)", type=contract.UNEXPECTED_ERROR,
                                       non_retryable=True)
            return StepResult(documents=[f"DOC-{kind.value}-{calls[kind.value]}"])

        return run

    @activity.defn(name=contract.AUDIT_ACTIVITY)
    async def audit(note: AuditNote) -> bool:
        return True

    return [make(kind) for kind in StepKind] + [audit]


async def test_unexpected_error_parks_the_step_like_a_business_rejection(client: Client) -> None:
    queue = f"unexpected-{uuid.uuid4().hex[:8]}"
    calls: Counter[str] = Counter()
    async with Worker(client, task_queue=queue, workflows=WORKFLOWS,
                      activities=stand_in_activities(calls, StepKind.ERP_CONFIRM_OPERATION)):
        order = new_order()
        await start_order(client, order, fast_policy(task_queue=queue))
        ack = await submit_event(client, event(order, "operation_confirmed", operation="0010", yield_qty=qty(20)))
        assert ack.erp is not None and ack.erp.status == "rejected"
        assert "KeyError" in (ack.erp.message or "")
        [exc] = (await order_summary(client, order.plant, order.number)).open_exceptions
        assert exc.category == "unexpected_error" and exc.step_kind == "erp.confirm_operation"
        assert calls["erp.confirm_operation"] == 1  # not retried by Temporal: parked at once

        await resolve_exception(client, order.plant, order.number,
                                ExceptionResolution(exception_id=exc.id, action="retry", by="dev.on.call"))

        async def posted() -> bool:
            summary = await order_summary(client, order.plant, order.number)
            return not summary.open_exceptions and len(summary.postings) == 1

        await eventually(posted)
        [exc] = (await order_summary(client, order.plant, order.number)).exceptions
        assert exc.status == "resolved" and exc.resolved_by == "dev.on.call"
        assert calls["erp.confirm_operation"] == 2
