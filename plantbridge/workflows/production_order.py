"""The `ProductionOrder` saga: one long-running workflow per production order (ARCHITECTURE §3).

Events arrive as the update `submit_event` (validated before anything enters history, answered
with an `Acknowledgement`) or the signal `plant_event`. Accepted events change the state at once and
plan *steps* (calls to the ERP, MES, QMS, WMS or notifier). Each system has a *lane* that runs its
steps one at a time, in order, as activities; a business rejection parks the step as an open
exception until a supervisor sends `resolve_exception`. SLA timers alert and escalate. The whole
state is one `SagaState`, carried across continue-as-new.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from opentelemetry import context as otel_context
    from opentelemetry import propagate

    from plantbridge.canonical import commands as c
    from plantbridge.canonical.ack import Acknowledgement, ErpOutcome
    from plantbridge.canonical.events import EventType, PlantEvent
    from plantbridge.canonical.exceptions import ExceptionResolution, OrderException, SupervisorAction
    from plantbridge.canonical.order import ProductionOrder
    from plantbridge.canonical.saga import (
        AlertRecord,
        OrderStatusView,
        SagaInput,
        SagaState,
        Step,
    )
    from plantbridge.canonical.states import END_STATES, OrderState
    from plantbridge.workflows import search_attributes as sa
    from plantbridge.workflows.details import current_details
    from plantbridge.workflows.maintenance import MaintenanceInput
    from plantbridge.workflows.order_logic import OrderLogic

LANES = ("erp", "mes", "qms", "wms", "notify")
AUDIT_ACTIVITY = "store.audit"
BUSINESS_ERROR_TYPES = ["BusinessRejection", "IdempotencyConflict"]
DUPLICATE = "DuplicateEvent"
REJECTED = "EventRejected"
BUSY = "SagaBusy"
KEEP_FINISHED_STEPS = 100
# Changes to running workflow code go through `workflow.patched` (see tests/test_replay.py).
PATCH_MAINTENANCE_CHILD = "maintenance-child-workflow"
PATCH_DOWNTIME_WATCH = "downtime-watch"
PATCH_ACK_PER_EVENT = "acknowledge-once-per-event"
PATCH_SINGLE_WATCHERS = "single-sla-watchers"


@workflow.defn(name="ProductionOrder")
class ProductionOrderWorkflow:
    @workflow.init
    def __init__(self, inp: SagaInput) -> None:
        self._s: SagaState | None = None
        self._logic: OrderLogic | None = None
        self._seen: set[str] = set()
        self._running = 0
        self._draining = False
        self._cancel: SupervisorAction | None = None
        self._events_this_run = 0
        self._visible: tuple[object, ...] = ()
        self._tasks: set[asyncio.Task[None]] = set()
        self._buffered_event: str | None = None
        self._watchers: set[tuple[str, ...]] = set()
        self._init(inp)

    # -- state access ----------------------------------------------------------------------------
    @property
    def s(self) -> SagaState:
        assert self._s is not None
        return self._s

    @property
    def logic(self) -> OrderLogic:
        assert self._logic is not None
        return self._logic

    def _init(self, inp: SagaInput) -> None:
        if self._s is not None:
            return
        if inp.carried is not None:
            self._s = inp.carried
            self._s.runs += 1
        else:
            self._s = SagaState(order=inp.order, policy=inp.policy)
        self._logic = OrderLogic(self._s, workflow.info().workflow_id)
        self._seen = set(self._s.seen_event_ids)
        for step in self._s.steps:
            if step.status == "running":  # cannot be carried, but never trust it
                step.status = "pending"
        if self._s.state is OrderState.PLANNED and self._s.order.released:
            self.logic.note(workflow.now(), "start", f"saga started for order {self._s.order.number}")
            self.logic.release(workflow.now())

    # -- run -------------------------------------------------------------------------------------
    @workflow.run
    async def run(self, inp: SagaInput) -> SagaState:
        self._init(inp)
        s = self.s
        for lane in LANES:
            self._spawn(self._lane(lane))
        self._spawn(self._audit_pump())
        self._spawn(self._watch_postings())
        self._spawn(self._start_maintenance_children())
        if s.policy.partial_confirmations == "aggregate" or s.policy.consumption == "aggregate":
            self._spawn(self._flush_aggregates())
        self._restart_watchers()
        self._publish()

        if s.state is OrderState.PLANNED:
            if s.order.released:
                self._release()
            else:
                await workflow.wait_condition(
                    lambda: self.s.state is not OrderState.PLANNED or self._cancel is not None
                )

        while True:
            await workflow.wait_condition(
                lambda: self._cancel is not None or self._finished() or self._continue_suggested()
            )
            if self._cancel is not None and s.state not in END_STATES:
                await self._run_cancellation(self._cancel)
                break
            if self._finished():
                s.posted_at = workflow.now()
                self.logic.transition(OrderState.POSTED, workflow.now(), "every posting done")
                self.logic.audit("posted", "plantbridge", "order_posted", postings=len(s.postings))
                self._publish()
                break
            await self._continue_as_new(inp)

        await workflow.wait_condition(lambda: not self.s.pending_audit and workflow.all_handlers_finished())
        return self.s

    def _watch_once(self, key: tuple[str, ...], make: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Start an SLA watcher unless one runs for the same thing (a handler may run before `run`)."""
        if key in self._watchers and workflow.patched(PATCH_SINGLE_WATCHERS):
            return
        self._watchers.add(key)
        self._spawn(make())

    def _downtime_watcher(self, work_center: str, since: datetime) -> Callable[[], Coroutine[Any, Any, None]]:
        return lambda: self._watch_downtime(work_center, since, None)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _finished(self) -> bool:
        s = self.s
        return (
            not s.has_buffered
            and s.state is OrderState.COMPLETED
            and s.hold is None
            and not s.open_exceptions
            and all(step.finished for step in s.steps)
        )

    def _continue_suggested(self) -> bool:
        return (
            self._events_this_run >= self.s.policy.continue_as_new_after
            or workflow.info().is_continue_as_new_suggested()
        )

    async def _continue_as_new(self, inp: SagaInput) -> None:
        # Let running steps finish and every handler return, then carry one state object over.
        self._draining = True
        await workflow.wait_condition(
            lambda: self._running == 0 and not self.s.pending_audit and workflow.all_handlers_finished()
        )
        s = self.s
        finished = [st for st in s.steps if st.finished and not st.kind.posts_to_erp]
        drop = {id(st) for st in finished[:-KEEP_FINISHED_STEPS]}
        s.steps = [st for st in s.steps if id(st) not in drop]
        self.logic.note(
            workflow.now(), "continue_as_new", f"run {s.runs} continues as new after {self._events_this_run} events"
        )
        workflow.continue_as_new(SagaInput(order=s.order, policy=s.policy, carried=s))

    # -- events ----------------------------------------------------------------------------------
    @workflow.update(name="submit_event")
    async def submit_event(self, event: PlantEvent) -> Acknowledgement:
        steps = self._accept(event)
        # The event's own postings (completion steps it triggers are reported by the order, not here).
        erp_steps = [st for st in steps if st.kind.posts_to_erp and st.ack_to is not None]
        if erp_steps:
            await workflow.wait_condition(
                lambda: self._draining or all(st.finished or st.status == "parked" for st in erp_steps)
            )
        if not erp_steps and self._buffered_event == event.event_id:
            outcome = ErpOutcome(
                status="pending",
                message="aggregated per the plant's posting policy: posted at operation end or with the next interval",
            )
            return Acknowledgement(event_id=event.event_id, status="accepted", order_state=self.s.state, erp=outcome)
        return Acknowledgement(
            event_id=event.event_id, status="accepted", order_state=self.s.state, erp=self._erp_outcome(erp_steps)
        )

    @submit_event.validator
    def _validate_event(self, event: PlantEvent) -> None:
        if self._s is None:
            raise ApplicationError("the order saga is starting; send the event again", type=REJECTED)
        if event.event_id in self._seen:
            raise ApplicationError(f"event {event.event_id} was received before", type=DUPLICATE)
        reason = self.logic.rejection_reason(event)
        if reason is not None:
            raise ApplicationError(reason, type=REJECTED)
        if self._draining:
            raise ApplicationError("the saga is rolling over its history; send the event again", type=BUSY)

    @workflow.signal(name="plant_event")
    def plant_event(self, event: PlantEvent) -> None:
        if event.event_id in self._seen:
            self.s.duplicates += 1
            return
        reason = self.logic.rejection_reason(event)
        if reason is not None:
            self.s.events_rejected += 1
            self.logic.note(workflow.now(), "rejected", f"{event.event_type.value}: {reason}", event_id=event.event_id)
            self._publish()
            return
        self._accept(event)

    def _accept(self, event: PlantEvent) -> list[Step]:
        s = self.s
        self._remember(event.event_id)
        self._events_this_run += 1
        if event.event_type is EventType.MAINTENANCE_REQUESTED:
            self.logic.maintenance_child = workflow.patched(PATCH_MAINTENANCE_CHILD)
        if event.event_type is EventType.DOWNTIME_ENDED:
            self.logic.downtime_watch = workflow.patched(PATCH_DOWNTIME_WATCH)
        steps = self.logic.apply(event, workflow.now())
        self._buffered_event = event.event_id if self.logic.last_buffered else None
        carrier: dict[str, str] = {}
        propagate.inject(carrier)  # the caller's trace (from the update's or signal's headers), if any
        for step in steps:
            step.trace = carrier
        if event.event_type is EventType.DOWNTIME_STARTED and workflow.patched(PATCH_DOWNTIME_WATCH):
            self._watch_once(("downtime", event.work_center or "", event.occurred_at.isoformat()),
                             lambda: self._watch_downtime(event.work_center or "", event.occurred_at, event))
        if s.hold is not None and s.hold.event_id == event.event_id:
            hold = s.hold
            self._watch_once(("hold", hold.event_id or ""), lambda: self._watch_hold(hold.event_id, hold.since))
        self._publish()
        return steps

    def _remember(self, event_id: str) -> None:
        s = self.s
        self._seen.add(event_id)
        s.seen_event_ids.append(event_id)
        overflow = len(s.seen_event_ids) - s.policy.dedup_window
        if overflow > 0:
            for old in s.seen_event_ids[:overflow]:
                self._seen.discard(old)
            del s.seen_event_ids[:overflow]

    def _erp_outcome(self, erp_steps: list[Step]) -> ErpOutcome:
        if not erp_steps:
            return ErpOutcome(status="not_required")
        docs = [d for st in erp_steps if st.result for d in st.result.documents]
        parked = [st for st in erp_steps if st.status == "parked"]
        if parked:
            exc = self._exception(parked[0].exception_id)
            return ErpOutcome(status="rejected", documents=docs, message=exc.message if exc else None)
        if all(st.finished for st in erp_steps):
            return ErpOutcome(status="posted", documents=docs)
        return ErpOutcome(status="pending", documents=docs)

    # -- ERP release -----------------------------------------------------------------------------
    @workflow.signal(name="order_released")
    def order_released(self, order: ProductionOrder | None = None) -> None:
        if self.s.state is not OrderState.PLANNED:
            return
        if order is not None and order.number == self.s.order.number and order.plant == self.s.order.plant:
            self.s.order = order
        self._release()

    def _release(self) -> None:
        self.logic.release(workflow.now())
        self._watch_once(("release",), self._watch_release)
        self._publish()

    # -- supervisor levers -----------------------------------------------------------------------
    @workflow.signal(name="resolve_exception")
    def resolve_exception(self, resolution: ExceptionResolution) -> None:
        now = workflow.now()
        exc = self._exception(resolution.exception_id)
        if exc is None or exc.status != "open":
            state = exc.status if exc else "unknown"
            self.logic.note(
                now,
                "supervisor",
                f"{resolution.action} of exception {resolution.exception_id} ignored: it is {state}",
                by=resolution.by,
            )
            self._publish()
            return
        if resolution.action == "override" and not resolution.document:
            self.logic.note(
                now,
                "supervisor",
                f"override of {exc.id} ignored: it needs the document posted by hand",
                by=resolution.by,
            )
            self._publish()
            return
        exc.status = {"retry": "retrying", "skip": "skipped", "override": "overridden"}[resolution.action]  # type: ignore[assignment]
        exc.resolved_by = resolution.by
        exc.resolution_comment = resolution.comment
        if resolution.action == "override":
            exc.resolution_comment = f"{resolution.comment or ''} document {resolution.document}".strip()
        self.logic.note(
            now, "supervisor", f"{resolution.action} exception {exc.id} ({exc.step_kind})", by=resolution.by
        )
        self.logic.audit(
            f"{exc.id}:{resolution.action}:{exc.attempts}",
            resolution.by,
            f"exception_{resolution.action}",
            exception_id=exc.id,
            step=exc.step_id,
            comment=resolution.comment,
            document=resolution.document,
        )
        exc.override_document = resolution.document
        self._publish()

    @workflow.signal(name="release_hold")
    def release_hold(self, action: SupervisorAction | None = None) -> None:
        action = action or SupervisorAction()
        now = workflow.now()
        if self.s.hold is None:
            self.logic.note(now, "supervisor", "release_hold ignored: the order is not on hold", by=action.by)
            self._publish()
            return
        self.s.step_counter += 1
        key = f"release_hold-{self.s.step_counter}"
        self.logic.dispose(now, "release", None, by=action.by, key=key, reason=action.reason)
        self.logic.audit(f"{key}:supervisor", action.by, "release_hold", reason=action.reason)
        self._publish()

    @workflow.signal(name="cancel_order")
    def cancel_order(self, action: SupervisorAction | None = None) -> None:
        action = action or SupervisorAction()
        now = workflow.now()
        if self.s.state in END_STATES or self.s.state is OrderState.COMPLETED or self._cancel is not None:
            self.logic.note(now, "supervisor", f"cancel ignored: the order is {self.s.state.value}", by=action.by)
            self._publish()
            return
        self._cancel = action
        self.s.cancel_requested_by = action.by
        self.logic.note(now, "supervisor", f"cancel requested: {action.reason or 'no reason given'}", by=action.by)
        self.logic.audit("cancel", action.by, "cancel_order", reason=action.reason)
        self._publish()

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

    # -- queries ---------------------------------------------------------------------------------
    @workflow.query(name="state")
    def state(self) -> OrderStatusView:
        s = self.s
        return OrderStatusView(
            workflow_id=workflow.info().workflow_id,
            plant=s.order.plant,
            order=s.order.number,
            state=s.state,
            open_exceptions=len(s.open_exceptions),
            on_hold=s.hold is not None,
        )

    @workflow.query(name="summary")
    def summary(self) -> SagaState:
        return self.s

    # -- lanes: each system's steps, one at a time, in order --------------------------------------
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
                except ActivityError as err:
                    self._running -= 1
                    try:
                        action = await self._park(step, err)
                    finally:
                        self._running += 1
                    if action != "retry":
                        break
        finally:
            # Only bookkeeping here: on eviction this runs outside the workflow event loop.
            self._running -= 1
        self._publish()

    async def _execute(self, step: Step) -> c.StepResult:
        s = self.s
        # The plant event's trace goes on into the activity (and the connector's HTTP call).
        token = otel_context.attach(propagate.extract(step.trace)) if step.trace else None
        try:
            result: c.StepResult = await workflow.execute_activity(
                step.kind.value,
                c.StepRequest(
                    idempotency_key=f"{workflow.info().workflow_id}:{step.id}",
                    workflow_id=workflow.info().workflow_id,
                    step_id=step.id,
                    kind=step.kind,
                    order=s.order,
                    command=step.command,
                    event_at=step.event_at,
                ),
                result_type=c.StepResult,
                start_to_close_timeout=s.policy.activity_timeout,
                retry_policy=RetryPolicy(
                    initial_interval=s.policy.retry_initial,
                    backoff_coefficient=2.0,
                    maximum_interval=s.policy.retry_max_interval,
                    non_retryable_error_types=BUSINESS_ERROR_TYPES,
                ),
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

    async def _park(self, step: Step, err: ActivityError) -> str:
        """Open an exception for the failed step and wait for a supervisor's decision."""
        s = self.s
        now = workflow.now()
        cause = err.cause
        message, code, details = str(cause or err), None, []
        if isinstance(cause, ApplicationError):
            message = cause.message
            if cause.details and isinstance(cause.details[0], dict):
                info = cause.details[0]
                code = info.get("code")
                details = [str(d) for d in info.get("details") or []]
        exc = self._exception(step.exception_id) if step.exception_id else None
        if exc is None:
            exc = OrderException(
                id=f"EXC-{len(s.exceptions) + 1}",
                step_id=step.id,
                step_kind=step.kind.value,
                system=step.kind.system,
                event_id=step.event_id,
                message=message,
                erp_code=code,
                details=details,
                opened_at=now,
                category="compensation" if step.compensation else "business_rejection",
            )
            s.exceptions.append(exc)
            step.exception_id = exc.id
        else:  # a retry was refused again
            exc.status, exc.message, exc.erp_code, exc.details = "open", message, code, details
            exc.attempts += 1
        step.status = "parked"
        self.logic.note(
            now, "exception", f"{exc.id} {step.kind.value} rejected by {exc.system}: {message}", event_id=step.event_id
        )
        self.logic.audit(
            f"{exc.id}:opened:{exc.attempts}",
            "plantbridge",
            "exception_opened",
            exception_id=exc.id,
            step=step.id,
            message=message[:500],
            code=code,
        )
        self.logic.alert(
            now,
            f"{exc.id}-{exc.attempts}",
            "critical",
            "exception",
            f"{step.kind.value} for order {s.order.number} rejected: {message[:300]}",
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
        if workflow.patched(PATCH_ACK_PER_EVENT):
            if not step.ack_to.lower().startswith("mes"):
                return
            if status != "rejected":
                siblings = [st for st in self.s.steps
                            if st.event_id == step.event_id and st.ack_to is not None and st.kind.posts_to_erp]
                if not all(st.finished for st in siblings):
                    return  # the event's last posting acknowledges it
                docs = [d for st in siblings if st.result for d in st.result.documents]
        cmd = c.Acknowledge(
            event_id=step.event_id, status=status, documents=docs, message=message, also=step.also_events
        )
        self.logic.add_step(
            workflow.now(),
            f"{step.id}:ack-{status}-{step.attempts}",
            cmd,
            c.StepKind.MES_ACKNOWLEDGE,
            event_id=step.event_id,
        )

    def _exception(self, exception_id: str | None) -> OrderException | None:
        for exc in self.s.exceptions:
            if exc.id == exception_id:
                return exc
        return None

    # -- audit -----------------------------------------------------------------------------------
    async def _audit_pump(self) -> None:
        while True:
            await workflow.wait_condition(lambda: bool(self.s.pending_audit))
            note = self.s.pending_audit[0]
            await workflow.execute_activity(
                AUDIT_ACTIVITY,
                note,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1)),
            )
            self.s.pending_audit.pop(0)

    # -- SLA timers ------------------------------------------------------------------------------
    def _restart_watchers(self) -> None:
        s = self.s
        if s.state is OrderState.RELEASED:
            self._watch_once(("release",), self._watch_release)
        if s.hold is not None:
            hold = s.hold
            self._watch_once(("hold", hold.event_id or ""), lambda: self._watch_hold(hold.event_id, hold.since))
        if s.downtime_open and workflow.patched(PATCH_DOWNTIME_WATCH):
            for wc, since in s.downtime_open.items():
                self._watch_once(("downtime", wc, since.isoformat()), self._downtime_watcher(wc, since))

    async def _watch_downtime(self, work_center: str, since: datetime, event: PlantEvent | None) -> None:
        """A downtime still open after the plant's `long_downtime`: alert now and request maintenance."""
        s = self.s
        remaining = max(since + s.policy.long_downtime - workflow.now(), timedelta(seconds=1))
        try:
            await workflow.wait_condition(lambda: self.s.downtime_open.get(work_center) != since, timeout=remaining)
            return
        except TimeoutError:
            pass
        now = workflow.now()
        minutes = int((now - since).total_seconds() // 60)
        reason = event.reason if event is not None and event.reason else "no reason given"
        message = f"work center {work_center} down for {minutes} min ({reason})"
        self.s.alerts.append(AlertRecord(topic="downtime", level=1, at=now, message=message))
        key = f"downtime-{work_center}-{since:%Y%m%d%H%M%S%f}"
        self.logic.alert(now, key, "critical", "downtime", message)
        if self.s.state not in END_STATES:
            equipment = (event.equipment if event is not None else None) or work_center
            self.logic.request_maintenance(
                now,
                key,
                equipment,
                work_center,
                2,
                f"long downtime: {message}",
                event.source if event is not None else "plantbridge",
            )
        self._publish()

    async def _flush_aggregates(self) -> None:
        """Post buffered quantities once they are `aggregate_every` old (operation end posts them sooner)."""
        every = self.s.policy.aggregate_every
        while True:
            await workflow.wait_condition(lambda: self.s.has_buffered and not self._draining)
            try:
                await workflow.wait_condition(lambda: not self.s.has_buffered, timeout=every)
            except TimeoutError:
                if self._cancel is None and self.s.state not in END_STATES:
                    self.logic.flush(workflow.now())
                    self._publish()

    async def _start_maintenance_children(self) -> None:
        while True:
            await workflow.wait_condition(
                lambda: not self._draining and any(m.status == "requested" for m in self.s.maintenance)
            )
            record = next(m for m in self.s.maintenance if m.status == "requested")
            s = self.s
            child_id = f"maintenance:{s.order.plant}:{s.order.number}:{record.request_id}"
            inp = MaintenanceInput(
                order=s.order,
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
                    "MaintenanceRequest",
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

    async def _escalate(
        self, topic: str, since: datetime, first: timedelta, done: Callable[[], bool], text: str
    ) -> None:
        """Alert when `done()` is still false `first` after `since`, escalate `escalate_after` later."""
        deadline = since + first
        for level in (1, 2):
            remaining = max(deadline - workflow.now(), timedelta(seconds=1))
            try:
                await workflow.wait_condition(done, timeout=remaining)
                return
            except TimeoutError:
                pass
            self._sla_alert(
                topic, level, f"{text} (open since {since:%Y-%m-%d %H:%M:%S} UTC)", f"{since:%Y%m%d%H%M%S%f}"
            )
            deadline = workflow.now() + self.s.policy.escalate_after

    def _sla_alert(self, topic: str, level: int, text: str, key: str) -> None:
        now = workflow.now()
        message = f"SLA {topic}, level {level}: {text}"
        self.s.alerts.append(AlertRecord(topic=topic, level=level, at=now, message=message))
        self.logic.note(now, "sla", message)
        self.logic.alert(
            now, f"sla-{topic}-{key}-{level}", "critical" if level > 1 else "warning", topic, message, level
        )
        self._publish()

    async def _watch_release(self) -> None:
        s = self.s
        since = s.released_at or workflow.now()
        await self._escalate(
            "release_not_started",
            since,
            s.policy.release_start_sla,
            lambda: self.s.state is not OrderState.RELEASED,
            f"order {s.order.number} released but not started",
        )

    async def _watch_hold(self, hold_key: str | None, since: datetime) -> None:
        s = self.s
        await self._escalate(
            "hold_unresolved",
            since,
            s.policy.hold_sla,
            lambda: self.s.hold is None or self.s.hold.event_id != hold_key,
            f"quality hold on order {s.order.number} unresolved",
        )

    def _overdue_candidates(self) -> list[Step]:
        return [
            st
            for st in self.s.steps
            if st.kind.posts_to_erp and not st.finished and st.started_at is not None and st.sla_level < 2
        ]

    async def _watch_postings(self) -> None:
        """One periodic check while ERP steps are open: no timer per posting."""
        policy = self.s.policy
        interval = max(policy.posting_sla / 4, timedelta(seconds=1))
        while True:
            await workflow.wait_condition(lambda: bool(self._overdue_candidates()))
            await workflow.sleep(interval)
            now = workflow.now()
            for step in self._overdue_candidates():
                assert step.started_at is not None
                due = step.started_at + policy.posting_sla + (policy.escalate_after if step.sla_level else timedelta(0))
                if now >= due:
                    step.sla_level += 1
                    self._sla_alert(
                        "posting_overdue",
                        step.sla_level,
                        f"{step.kind.value} ({step.id}) for order {self.s.order.number} not posted",
                        step.id,
                    )

    # -- visibility ------------------------------------------------------------------------------
    def _publish(self) -> None:
        """Search attributes (on change only) and the current-details screen."""
        s = self.s
        values = (s.state.value, len(s.open_exceptions))
        if values != self._visible:
            updates: list[SearchAttributeUpdate[Any]] = [
                sa.ORDER_STATE.value_set(s.state.value),
                sa.OPEN_EXCEPTIONS.value_set(len(s.open_exceptions)),
            ]
            if not self._visible:
                updates += [
                    sa.PLANT.value_set(s.order.plant),
                    sa.ORDER_NUMBER.value_set(s.order.number),
                    sa.MATERIAL.value_set(s.order.material),
                    sa.ERP_SYSTEM.value_set(s.order.erp_system),
                    sa.WORK_CENTER.value_set(sorted({op.work_center for op in s.order.operations})),
                ]
            workflow.upsert_search_attributes(updates)
            self._visible = values
        workflow.set_current_details(current_details(s))
