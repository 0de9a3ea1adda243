"""The order saga's step engine: lanes, running a step, parking it for a supervisor, acknowledging.

Each outside system has a *lane* that runs its pending steps one at a time, in order, as
activities (the plant systems' as local activities: `local_steps.py`). A step whose activity fails
with a non-retryable error (a business rejection, an idempotency conflict, an unexpected error past
its attempts) is *parked* as an open exception until a supervisor retries, skips or overrides it
(`resolve_exception`). A finished ERP posting is
*acknowledged* to the plant system that sent its event. Cancellation runs compensations through
the same `_run_step`. Mixed into `ProductionOrderWorkflow`; deterministic workflow code.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from opentelemetry import context as otel_context
    from opentelemetry import propagate

    from plantbridge import contract
    from plantbridge.canonical import commands as c
    from plantbridge.canonical.exceptions import OrderException, SupervisorAction
    from plantbridge.canonical.saga import SagaState, Step
    from plantbridge.canonical.states import OrderState
    from plantbridge.workflows import patches
    from plantbridge.workflows.details import publish, publish_details
    from plantbridge.workflows.local_steps import LOCAL_RETRY_THRESHOLD, local_step_timeout, runs_local
    from plantbridge.workflows.maintenance import MaintenanceInput
    from plantbridge.workflows.order_logic import OrderLogic
    from plantbridge.workflows.retention import without_oldest_finished
    from plantbridge.workflows.step_calls import (
        Category,
        failure_category,
        failure_info,
        open_exception,
        order_for_step,
        step_heartbeat_timeout,
        step_retry_policy,
    )

LANES = ("erp", "mes", "qms", "wms", "notify")


class StepEngine:
    """Lanes, steps, parking and acknowledgements over the saga's one `SagaState`."""

    _s: SagaState | None
    _logic: OrderLogic | None
    _running: int
    _draining: bool
    _cancel: SupervisorAction | None
    _tasks: set[asyncio.Task[None]]
    _visible: tuple[object, ...]
    _patches: patches.RunPatches  # this run's patches (the epoch consulted at its start)

    @property
    def s(self) -> SagaState:
        assert self._s is not None
        return self._s

    @property
    def logic(self) -> OrderLogic:
        assert self._logic is not None
        return self._logic

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _exception(self, exception_id: str | None) -> OrderException | None:
        for exc in self.s.exceptions:
            if exc.id == exception_id:
                return exc
        return None

    def _next_step(self, lane: str) -> Step | None:
        if self._draining or self._cancel is not None:
            return None
        s = self.s
        for step in s.steps:
            if step.status != "pending" or step.compensation or step.lane != lane:
                continue
            if step.blocked_by_hold and s.hold is not None:
                continue
            if any(not dep.finished for dep in (self._step(d) for d in step.after) if dep is not None):
                continue
            return step
        return None

    def _step(self, step_id: str) -> Step | None:
        for step in self.s.steps:
            if step.id == step_id:
                return step
        return None

    async def _lane(self, lane: str) -> None:
        while True:
            await workflow.wait_condition(lambda: self._next_step(lane) is not None)
            step = self._next_step(lane)
            if step is not None:
                await self._run_step(step)

    async def _run_step(self, step: Step) -> None:
        self._running += 1
        try:
            while True:
                if step.review is not None:  # held for a supervisor before it runs (never an older history)
                    self._running -= 1
                    try:
                        action = await self._park(step, (step.review, None, []), "unknown_material", "held")
                    finally:
                        self._running += 1
                    if action != "retry":
                        break
                    step.review = None
                step.status = "running"
                step.attempts += 1
                step.started_at = step.started_at or workflow.now()
                try:
                    step.result = await self._execute(step)
                    step.status = "done"
                    step.finished_at = workflow.now()
                    exc = self._exception(step.exception_id) if step.exception_id else None
                    if exc is not None:  # a supervisor's retry went through
                        exc.status, exc.closed_at = "resolved", workflow.now()
                    self.logic.note(
                        workflow.now(),
                        "step",
                        f"{step.kind.value} done {' '.join(step.result.documents)}".rstrip(),
                        event_id=step.event_id,
                    )
                    self._acknowledge(step, "posted")
                    break
                except (ActivityError, ApplicationError) as err:  # ApplicationError: a local step's (step_calls.py)
                    self._running -= 1
                    try:
                        category = failure_category(err, compensation=step.compensation)
                        action = await self._park(step, failure_info(err), category)
                    finally:
                        self._running += 1
                    if action != "retry":
                        break
        finally:
            # Only bookkeeping here: on eviction this runs outside the workflow event loop.
            self._running -= 1
        self._forget_finished()
        self._publish()

    def _forget_finished(self) -> None:
        """Drop finished steps nothing reads again beyond the newest ones (bounded memory per order)."""
        kept = without_oldest_finished(self.s.steps)
        if kept is not None and self._patches.on(patches.FINISHED_STEPS_BOUNDED):
            self.s.steps = kept

    async def _execute(self, step: Step) -> c.StepResult:
        s = self.s
        order = order_for_step(s.order, step.kind) if self._patches.on(patches.STEP_INPUTS) else s.order
        request = c.StepRequest(
            idempotency_key=contract.idempotency_key(workflow.info().workflow_id, step.id),
            workflow_id=workflow.info().workflow_id,
            step_id=step.id,
            kind=step.kind,
            order=order,
            command=step.command,
            event_at=step.event_at,
            unexpected_error_attempts=s.policy.unexpected_error_attempts,
        )
        # The plant event's trace goes on into the activity (and the connector's HTTP call).
        token = otel_context.attach(propagate.extract(step.trace)) if step.trace else None
        try:
            result: c.StepResult
            if runs_local(step.kind, compensation=step.compensation) and self._patches.on(patches.LOCAL_PLANT_STEPS):
                # A plant-system call, inside this workflow task (local_steps.py says why). No pending
                # activity shows it in the UI: the current details list it as in progress.
                publish_details(s)
                result = await workflow.execute_local_activity(
                    step.kind.value,
                    request,
                    result_type=c.StepResult,
                    start_to_close_timeout=local_step_timeout(s.policy),
                    retry_policy=step_retry_policy(s.policy),
                    local_retry_threshold=LOCAL_RETRY_THRESHOLD,
                )
            else:
                result = await workflow.execute_activity(
                    step.kind.value,
                    request,
                    result_type=c.StepResult,
                    start_to_close_timeout=s.policy.activity_timeout,
                    heartbeat_timeout=step_heartbeat_timeout(s.policy),
                    retry_policy=step_retry_policy(s.policy),
                )
        except GeneratorExit:  # the worker evicts this run: its context is gone, nothing to detach
            raise
        except BaseException:
            if token is not None:
                otel_context.detach(token)
            raise
        if token is not None:
            otel_context.detach(token)
        return result

    async def _park(self, step: Step, failure: tuple[str, str | None, list[str]], category: Category,
                    verb: str = "rejected") -> str:
        """Open an exception for the failed (or held) step and wait for a supervisor's decision."""
        s = self.s
        now = workflow.now()
        message, code, _ = failure
        existing = self._exception(step.exception_id) if step.exception_id else None
        exc = open_exception(
            s.exceptions,
            existing,
            step_id=step.id,
            step_kind=step.kind.value,
            system=step.kind.system,
            event_id=step.event_id,
            failure=failure,
            now=now,
            category=category,
        )
        step.exception_id = exc.id
        step.status = "parked"
        self.logic.note(
            now, "exception", f"{exc.id} {step.kind.value} " + (f"rejected by {exc.system}" if verb == "rejected"
                                                                else f"{verb} for a supervisor") + f": {message}",
            event_id=step.event_id,
        )
        self.logic.audit(
            contract.exception_audit_key(exc.id, "opened", exc.attempts),
            "plantbridge",
            "exception_opened",
            exception_id=exc.id,
            step=step.id,
            message=message[:500],
            code=code,
        )
        self.logic.alert(
            now,
            contract.exception_alert_key(exc.id, exc.attempts),
            "critical",
            "exception",
            f"{step.kind.value} for order {s.order.number} {verb}: {message[:300]}",
        )
        self._acknowledge(step, "rejected", message)
        self._publish()
        await workflow.wait_condition(
            lambda: exc.status != "open" or (self._cancel is not None and not step.compensation)
        )
        exc.closed_at = workflow.now() if exc.status != "retrying" else None
        if exc.status == "retrying":
            step.status = "running"
            return "retry"
        if exc.status == "overridden":
            doc = exc.override_document or ""
            step.result = c.StepResult(documents=[doc] if doc else [], message=f"overridden by {exc.resolved_by}")
            step.status = "overridden"
            self._acknowledge(step, "overridden")
        elif exc.status == "skipped" and self._cancel is None:
            step.status = "skipped"
            self._acknowledge(step, "skipped")
        step.finished_at = workflow.now()
        return exc.status

    def _acknowledge(self, step: Step, status: str, message: str | None = None) -> None:
        """Tell the source system the ERP outcome of its event.

        The business acknowledgement goes to the MES (sources named `mes…`); other sources (QMS,
        WMS, edge agents) read the outcome from the gateway. An event with several ERP postings is
        acknowledged once, when the last of them is done, with all their documents; a rejection is
        acknowledged at once.
        """
        if step.ack_to is None or not step.kind.posts_to_erp or step.event_id is None:
            return
        docs = step.result.documents if step.result else []
        if self._patches.on(patches.ACK_PER_TRIGGER):
            if step.ack_to.lower().startswith("mes"):
                self._acknowledge_trigger(step, status, message)
            return
        if self._patches.on(patches.ACK_PER_EVENT):
            if not step.ack_to.lower().startswith("mes"):
                return
            if status != "rejected":
                siblings = [
                    st
                    for st in self.s.steps
                    if st.event_id == step.event_id and st.ack_to is not None and st.kind.posts_to_erp
                ]
                if not all(st.finished for st in siblings):
                    return  # the event's last posting acknowledges it
                docs = [d for st in siblings if st.result for d in st.result.documents]
        cmd = c.Acknowledge(
            event_id=step.event_id, status=status, documents=docs, message=message, also=step.also_events
        )
        self.logic.add_step(
            workflow.now(),
            contract.ack_step(step.id, status, step.attempts),
            cmd,
            c.StepKind.MES_ACKNOWLEDGE,
            event_id=step.event_id,
        )

    def _acknowledge_trigger(self, step: Step, status: str, message: str | None) -> None:
        """One acknowledgement for the postings one event planned, once the last is done (a rejection at
        once, for its own posting), naming each event they carry with that event's documents."""
        group = [step]
        if status != "rejected":
            trigger = step.trigger or step.event_id
            group = [st for st in self.s.steps
                     if st.ack_to is not None and st.kind.posts_to_erp and (st.trigger or st.event_id) == trigger]
            if not all(st.finished for st in group):
                return  # the trigger's last posting acknowledges them all
        by_event: dict[str, list[str]] = {}
        for st in group:
            for event_id in (st.event_id or "", *st.also_events):
                by_event.setdefault(event_id, []).extend(st.result.documents if st.result else [])
        events = list(by_event)
        cmd = c.Acknowledge(
            event_id=events[0], status=status, message=message, also=events[1:],
            documents=[d for st in group if st.result for d in st.result.documents],
            documents_by_event=by_event if len(group) > 1 else {},
        )
        self.logic.add_step(
            workflow.now(), contract.ack_step(step.id, status, step.attempts), cmd, c.StepKind.MES_ACKNOWLEDGE,
            event_id=events[0],
        )

    async def _audit_pump(self) -> None:
        while True:
            await workflow.wait_condition(lambda: bool(self.s.pending_audit))
            if self._patches.on(patches.AUDIT_BATCH):
                # Every note waiting now, in one short store write that needs no task of its own.
                notes = list(self.s.pending_audit)
                await workflow.execute_local_activity(
                    contract.AUDIT_BATCH_ACTIVITY,
                    notes,
                    start_to_close_timeout=timedelta(seconds=30),
                    retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1)),
                )
                del self.s.pending_audit[: len(notes)]
                continue
            note = self.s.pending_audit[0]
            await workflow.execute_activity(
                contract.AUDIT_ACTIVITY,
                note,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1)),
            )
            self.s.pending_audit.pop(0)

    async def _run_cancellation(self, action: SupervisorAction) -> None:
        s = self.s
        # Let running calls finish (a posting in flight must land or fail, never be cut off).
        await workflow.wait_condition(lambda: self._running == 0)
        now = workflow.now()
        for step in s.steps:
            if step.status == "pending":
                step.status = "cancelled"
        for exc in s.open_exceptions:
            exc.status = "skipped"
            exc.closed_at = now
            exc.resolution_comment = "order cancelled"
        for step in s.steps:
            if step.status == "parked":
                step.status = "cancelled"
        unposted = [e for b in s.buffered_confirmations.values() for e in b.event_ids] + [
            e for b in s.buffered_consumption for e in b.event_ids
        ]
        if unposted:
            self.logic.note(
                now, "cancel", f"{len(unposted)} aggregated event(s) not posted to the ERP: " + ", ".join(unposted[:20])
            )
            self.logic.audit(
                "cancel:unposted", action.by, "aggregated_events_not_posted", count=len(unposted), first=unposted[0]
            )
            s.buffered_confirmations.clear()
            s.buffered_consumption.clear()
        compensations = self.logic.plan_compensations(now)
        self.logic.note(
            now, "cancel", "compensating: " + (", ".join(st.kind.value for st in compensations) or "nothing")
        )
        self._publish()
        for step in compensations:
            await self._run_step(step)
        posted = len(s.postings)
        s.cancelled_at = workflow.now()
        self.logic.transition(OrderState.CANCELLED, workflow.now(), f"cancelled by {action.by}")
        if posted:
            self.logic.alert(
                workflow.now(),
                "cancel",
                "warning",
                "cancelled_with_postings",
                f"order {s.order.number} cancelled with {posted} ERP posting(s) in place; "
                "reverse them in the ERP if needed",
            )
            await self._run_step(s.steps[-1])
        self.logic.audit(
            "cancelled", action.by, "order_cancelled", compensations=len(compensations), erp_postings=posted
        )
        self._publish()

    async def _start_maintenance_children(self) -> None:
        while True:
            await workflow.wait_condition(
                lambda: not self._draining and any(m.status == "requested" for m in self.s.maintenance)
            )
            record = next(m for m in self.s.maintenance if m.status == "requested")
            s = self.s
            child_id = contract.maintenance_workflow_id(s.order.plant, s.order.number, record.request_id)
            trimmed = self._patches.on(patches.STEP_INPUTS)
            inp = MaintenanceInput(
                order=order_for_step(s.order, None) if trimmed else s.order,
                policy=s.policy,
                request_id=record.request_id,
                equipment=record.equipment,
                work_center=record.work_center,
                priority=record.priority,
                description=record.description,
                requested_at=record.requested_at,
                source=record.source,
            )
            self._running += 1
            try:
                await workflow.start_child_workflow(
                    contract.MAINTENANCE_WORKFLOW,
                    inp,
                    id=child_id,
                    task_queue=s.policy.task_queue,
                    parent_close_policy=ParentClosePolicy.ABANDON,
                )
            except Exception as err:  # already started (a retried start after continue-as-new)
                workflow.logger.info("maintenance child %s not started: %s", child_id, err)
            finally:
                self._running -= 1
            record.status, record.workflow_id = "started", child_id
            self.logic.note(workflow.now(), "maintenance", f"maintenance request {child_id} started")
            self._publish()

    def _publish(self) -> None:
        """Search attributes (on change only) and the current-details screen."""
        self._visible = publish(self.s, self._visible)
