"""The `ProductionOrder` saga: one long-running workflow per production order (ARCHITECTURE §3).

Events arrive as the update `submit_event` (validated before anything enters history, answered
with an `Acknowledgement`); the signal `plant_event` is refused unless the plant's policy opens it.
Accepted events change the state at once and plan *steps* (calls to the ERP, MES, QMS, WMS or
notifier) by the rules in `order_logic.py`. This module holds the handlers and `run`; the step engine
(lanes, parking, acknowledgements) is in `steps.py`, the SLA timers in `sla.py`. The whole
state is one `SagaState`, carried across continue-as-new after every handler finished.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from opentelemetry import propagate

    from plantbridge import contract
    from plantbridge.canonical.ack import Acknowledgement, ErpOutcome
    from plantbridge.canonical.events import EventType, PlantEvent
    from plantbridge.canonical.exceptions import ExceptionResolution, SupervisorAction
    from plantbridge.canonical.order import OrderChangeNotice, OrderReleaseNotice, ProductionOrder
    from plantbridge.canonical.saga import OrderStatusView, SagaInput, SagaState, Step
    from plantbridge.canonical.states import END_STATES, OrderState
    from plantbridge.workflows import acks, patches
    from plantbridge.workflows.changes import OrderChanges
    from plantbridge.workflows.order_logic import OrderLogic
    from plantbridge.workflows.retention import KEEP_FINISHED_STEPS
    from plantbridge.workflows.step_calls import apply_resolution, refusal
    from plantbridge.workflows.steps import LANES


@workflow.defn(name=contract.PRODUCTION_ORDER_WORKFLOW)
class ProductionOrderWorkflow(OrderChanges):
    """One production order from release to posting (or cancellation)."""

    @workflow.init
    def __init__(self, inp: SagaInput) -> None:
        # First, in the run's first workflow task, every replay alike: the patch epoch (patches.py).
        self._patches = patches.RunPatches.at_start()
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
        self._changes_wanted = 0
        self._release_reading = False
        self._init(inp)

    def _init(self, inp: SagaInput) -> None:
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

    @workflow.run
    async def run(self, inp: SagaInput) -> SagaState:
        """Start the lanes and timers, wait for release, then until posted, cancelled or rolled over."""
        s = self.s
        for lane in LANES:
            self._spawn(self._lane(lane))
        self._spawn(self._audit_pump())
        self._spawn(self._watch_postings())
        self._spawn(self._start_maintenance_children())
        self._spawn(self._follow_changes())
        if s.policy.partial_confirmations == "aggregate" or s.policy.consumption == "aggregate":
            self._spawn(self._flush_aggregates())
        self._restart_watchers()
        self._publish()

        while True:
            try:
                await self._until_end(inp)
                break
            except asyncio.CancelledError:
                # Temporal's RequestCancelWorkflowExecution (the UI's "Request Cancellation", `handle.cancel()`):
                # the same compensations and audit as `cancel_order` (before the patch: the run just ended).
                if not self._patches.on(patches.TEMPORAL_CANCEL):
                    raise
                if self._cancel_from_temporal():
                    await self._shielded(self._run_cancellation(self._cancel or SupervisorAction()))
                    break

        while True:
            try:
                await workflow.wait_condition(lambda: not self.s.pending_audit and workflow.all_handlers_finished())
                break
            except asyncio.CancelledError:
                if not self._patches.on(patches.TEMPORAL_CANCEL):
                    raise
                self.logic.note(workflow.now(), "supervisor", "cancellation ignored: the order is "
                                f"{self.s.state.value}", by=contract.TEMPORAL_UI_ACTOR)
        return self.s

    async def _until_end(self, inp: SagaInput) -> None:
        """Wait for release, then until posted or cancelled; continue as new when the history is long."""
        s = self.s
        if s.state is OrderState.PLANNED:  # not released yet (`_init` releases one that came released)
            await workflow.wait_condition(lambda: self.s.state is not OrderState.PLANNED or self._cancel is not None)

        while True:
            await workflow.wait_condition(
                lambda: self._cancel is not None or self._finished() or self._continue_suggested()
            )
            if self._cancel is not None and s.state not in END_STATES:
                if self._patches.on(patches.TEMPORAL_CANCEL):  # a cancellation from Temporal cannot cut it off
                    await self._shielded(self._run_cancellation(self._cancel))
                else:
                    await self._run_cancellation(self._cancel)
                return
            if self._finished():
                s.posted_at = workflow.now()
                self.logic.transition(OrderState.POSTED, workflow.now(), "every posting done")
                self.logic.audit("posted", "plantbridge", "order_posted", postings=len(s.postings))
                self._publish()
                return
            await self._continue_as_new(inp)

    def _cancel_from_temporal(self) -> bool:
        """A cancellation requested through Temporal, as a `cancel_order` by `temporal-ui`; False when ignored."""
        if self._cancel is not None:  # a cancel is already under way: it goes on
            return True
        reason = workflow.cancellation_reason() or "cancellation requested in Temporal"
        return self._request_cancel(SupervisorAction(by=contract.TEMPORAL_UI_ACTOR, reason=reason))

    async def _shielded(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run `coro` to its end even when Temporal cancels the workflow meanwhile (noted, not obeyed)."""
        task = asyncio.create_task(coro)
        while True:
            try:
                await asyncio.shield(task)
                return
            except asyncio.CancelledError:
                if task.done():
                    raise
                self.logic.note(workflow.now(), "supervisor", "cancellation requested in Temporal: the "
                                "cancellation under way goes on", by=contract.TEMPORAL_UI_ACTOR)
                self._publish()

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
            lambda: self._running == 0
            and self._changes_wanted == 0
            and not self.s.pending_audit
            and workflow.all_handlers_finished()
        )
        s = self.s
        finished = [st for st in s.steps if st.finished and not st.kind.posts_to_erp]
        drop = {id(st) for st in finished[:-KEEP_FINISHED_STEPS]}
        s.steps = [st for st in s.steps if id(st) not in drop]
        self.logic.note(
            workflow.now(), "continue_as_new", f"run {s.runs} continues as new after {self._events_this_run} events"
        )
        workflow.continue_as_new(SagaInput(order=s.order, policy=s.policy, carried=s))

    @workflow.update(name=contract.UPDATE_SUBMIT_EVENT)
    async def submit_event(self, event: PlantEvent) -> Acknowledgement:
        """A plant event, sent by the gateway (MES, QMS, WMS, edge agents) as an update.

        The validator refuses duplicates and invalid events before anything enters history; an
        accepted event changes state, plans its steps, and is answered with its ERP outcome.
        """
        steps = self._accept(event)
        # The event's own postings (completion steps it triggers are reported by the order, not here).
        erp_steps = [st for st in steps if st.kind.posts_to_erp and st.ack_to is not None]
        if erp_steps:
            if self._patches.on(patches.BOUNDED_ACK):
                await self._wait_for_outcome(erp_steps)
            else:  # histories recorded before the patch waited without a bound
                await workflow.wait_condition(lambda: self._draining or acks.settled(erp_steps))
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
        """Refuse a duplicate (`DuplicateEvent`), an invalid event (`EventRejected`), or any while rolling over
        or reading the released order (`SagaBusy`)."""
        if event.event_id in self._seen:
            raise ApplicationError(f"event {event.event_id} was received before", type=contract.DUPLICATE_EVENT)
        if self._release_reading:  # released, reading its order from the ERP: a moment
            raise ApplicationError("the saga is reading its released order; send the event again",
                                   type=contract.SAGA_BUSY)
        reason = self.logic.rejection_reason(event)
        if reason is not None:
            raise ApplicationError(reason, type=contract.EVENT_REJECTED)
        if self._draining:
            raise ApplicationError(
                "the saga is rolling over its history; send the event again", type=contract.SAGA_BUSY
            )

    @workflow.signal(name=contract.SIGNAL_PLANT_EVENT)
    def plant_event(self, event: PlantEvent) -> None:
        """A plant event as a signal: no answer; applied only when the plant's policy has `event_signals`.

        Otherwise refused: a signal passes none of the gateway's checks (key, ownership per event
        type, `source`), and anyone with the Temporal UI can send one; refused events are counted,
        noted and audited with the claimed source. With `event_signals`: duplicates are counted,
        invalid events noted on the timeline; others as `submit_event`.
        """
        if not self.s.policy.event_signals and self._patches.on(patches.EVENT_SIGNAL_CLOSED):
            self.s.events_rejected += 1
            self.logic.note(workflow.now(), "rejected", f"{event.event_type.value} sent as a signal refused: plant "
                            "events enter through the gateway", event_id=event.event_id, by=contract.SIGNAL_ACTOR)
            self.logic.audit(f"signal-refused-{self.s.events_rejected}", contract.SIGNAL_ACTOR,
                             "plant_event_signal_refused",
                             event_id=event.event_id, event_type=event.event_type.value, source=event.source)
            self._publish()
            return
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
            self.logic.maintenance_child = self._patches.on(patches.MAINTENANCE_CHILD)
        if event.event_type is EventType.DOWNTIME_ENDED:
            self.logic.downtime_watch = self._patches.on(patches.DOWNTIME_WATCH)
        if event.event_type is EventType.MATERIAL_CONSUMED and self.logic.unknown_material(event) is not None:
            self.logic.unknown_material_review = self._patches.on(patches.UNKNOWN_MATERIAL)
        steps = self.logic.apply(event, workflow.now())
        self._buffered_event = event.event_id if self.logic.last_buffered else None
        carrier: dict[str, str] = {}
        propagate.inject(carrier)  # the caller's trace (from the update's or signal's headers), if any
        for step in steps:
            step.trace = carrier
        if event.event_type is EventType.DOWNTIME_STARTED and self._patches.on(patches.DOWNTIME_WATCH):
            self._watch_once(
                ("downtime", event.work_center or "", event.occurred_at.isoformat()),
                lambda: self._watch_downtime(event.work_center or "", event.occurred_at, event),
            )
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
        return acks.erp_outcome(self.s.steps, erp_steps, self._exception)

    async def _wait_for_outcome(self, erp_steps: list[Step]) -> None:
        """Wait for the event's postings at most `ack_wait`, and not at all behind a parked step (issue 10)."""

        def known() -> bool:
            return (self._draining or acks.settled(erp_steps)
                    or acks.queued_behind_parked(self.s.steps, erp_steps) is not None)

        if known():
            return
        try:
            await workflow.wait_condition(known, timeout=self.s.policy.ack_wait)
        except TimeoutError:
            pass  # answered `pending`; the outcome follows as the business acknowledgement

    @workflow.signal(name=contract.SIGNAL_ORDER_RELEASED)
    def order_released(self, notice: OrderReleaseNotice | ProductionOrder | None = None) -> None:
        """Sent by the gateway's ERP intake when the ERP releases an order whose saga waits `planned`.

        Carries the key (and version) only: the saga reads the released order from the ERP
        (`erp.read_order`), then plans dispatch and staging. A whole `ProductionOrder` (older
        gateways) is taken as its key too; before the patch it replaced the saga's order.
        """
        if self.s.state is not OrderState.PLANNED:
            return
        if self._patches.on(patches.RELEASE_READS_ORDER):
            if notice is None:
                notice = OrderReleaseNotice(plant=self.s.order.plant, order=self.s.order.number)
            elif isinstance(notice, ProductionOrder):
                notice = OrderReleaseNotice(plant=notice.plant, order=notice.number, version=notice.version)
            self._release_notice(notice)
            return
        order = notice if isinstance(notice, ProductionOrder) else None
        if order is not None and order.number == self.s.order.number and order.plant == self.s.order.plant:
            self.s.order = order
        self._release()

    @workflow.signal(name=contract.SIGNAL_ORDER_CHANGED)
    def order_changed(self, notice: OrderChangeNotice) -> None:
        """Sent by the gateway's ERP intake when the ERP changed the order (S/4HANA `Changed`, a repeated
        LOIPRO IDoc): the key and version only. The saga reads the order from the ERP and acts on the
        difference; a notice not newer than the applied version is noted and ignored.
        """
        self._change_notice(notice)

    @workflow.signal(name=contract.SIGNAL_RESOLVE_EXCEPTION)
    def resolve_exception(self, resolution: ExceptionResolution) -> None:
        """A supervisor (Temporal UI, CLI, supervisor API) retries, skips or overrides an open exception.

        Noted, audited with `by`; the parked step then runs again, is skipped, or takes the document
        posted by hand. A resolution for an exception that is not open is noted and ignored.
        """
        now = workflow.now()
        exc = self._exception(resolution.exception_id)
        ignored = refusal(exc, resolution)
        if ignored is not None or exc is None:
            self.logic.note(now, "supervisor", ignored or "", by=resolution.by)
            self._publish()
            return
        apply_resolution(exc, resolution)
        if exc.category == "order_change":  # no step waits on it: any resolution closes it
            exc.status = "resolved" if exc.status == "retrying" else exc.status
            exc.closed_at = now
        self.logic.note(
            now, "supervisor", f"{resolution.action} exception {exc.id} ({exc.step_kind})", by=resolution.by
        )
        self.logic.audit(
            contract.exception_audit_key(exc.id, resolution.action, exc.attempts),
            resolution.by,
            f"exception_{resolution.action}",
            exception_id=exc.id,
            step=exc.step_id,
            comment=resolution.comment,
            document=resolution.document,
        )
        self._publish()

    @workflow.signal(name=contract.SIGNAL_RELEASE_HOLD)
    def release_hold(self, action: SupervisorAction | None = None) -> None:
        """A supervisor releases the quality hold (as a `release` disposition): stock unblocked, MES hold
        lifted, the order back in the state the hold interrupted. Ignored when not on hold.
        """
        action = action or SupervisorAction()
        now = workflow.now()
        if self.s.hold is None:
            self.logic.note(now, "supervisor", "release_hold ignored: the order is not on hold", by=action.by)
            self._publish()
            return
        ending = self.s.state in END_STATES or self._cancel is not None
        if ending and self._patches.on(patches.RELEASE_HOLD_ENDING):
            # A cancelled (or cancelling) order keeps its hold record; releasing it would ask for a
            # transition out of `cancelled` and fail every workflow task (the order stuck).
            self.logic.note(now, "supervisor", f"release_hold ignored: the order is {self.s.state.value}"
                            f"{' and being cancelled' if self._cancel is not None else ''}", by=action.by)
            self._publish()
            return
        self.s.step_counter += 1
        key = contract.release_hold_key(self.s.step_counter)
        self.logic.dispose(now, "release", None, by=action.by, key=key, reason=action.reason)
        self.logic.audit(contract.event_step(key, "supervisor"), action.by, "release_hold", reason=action.reason)
        self._publish()

    @workflow.signal(name=contract.SIGNAL_CANCEL_ORDER)
    def cancel_order(self, action: SupervisorAction | None = None) -> None:
        """A supervisor cancels the order: running calls finish, then what was done is undone in reverse.

        Ignored once completed, posted or cancelled, or when a cancel is already under way.
        """
        self._request_cancel(action or SupervisorAction())

    def _request_cancel(self, action: SupervisorAction) -> bool:
        now = workflow.now()
        if self.s.state in END_STATES or self.s.state is OrderState.COMPLETED or self._cancel is not None:
            self.logic.note(now, "supervisor", f"cancel ignored: the order is {self.s.state.value}", by=action.by)
            self._publish()
            return False
        self._cancel = action
        self.s.cancel_requested_by = action.by
        self.logic.note(now, "supervisor", f"cancel requested: {action.reason or 'no reason given'}", by=action.by)
        self.logic.audit("cancel", action.by, "cancel_order", reason=action.reason)
        self._publish()
        return True

    @workflow.query(name=contract.QUERY_STATE)
    def state(self) -> OrderStatusView:
        """The short status (gateway, CLI): state, open exceptions, hold."""
        s = self.s
        return OrderStatusView(
            workflow_id=workflow.info().workflow_id,
            plant=s.order.plant,
            order=s.order.number,
            state=s.state,
            open_exceptions=len(s.open_exceptions),
            on_hold=s.hold is not None,
        )

    @workflow.query(name=contract.QUERY_SUMMARY)
    def summary(self) -> SagaState:
        """The whole saga state (gateway's order view, CLI, tests)."""
        return self.s
