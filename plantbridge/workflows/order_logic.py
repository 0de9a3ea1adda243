"""The rules of the order saga, as plain deterministic code over one `SagaState`.

No Temporal here: the workflow calls these to validate an event, to change state and to plan the
steps (calls to outside systems) an event needs. Time comes in as an argument.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from plantbridge.canonical import commands as c
from plantbridge.canonical.events import ActivityTimes, EventType, PlantEvent
from plantbridge.canonical.fields import Quantity
from plantbridge.canonical.saga import HoldRecord, OperationProgress, Step
from plantbridge.canonical.states import END_STATES, OrderState
from plantbridge.contract import compensation_step, completion_step, event_step, release_step
from plantbridge.workflows.aggregation import AggregationMixin
from plantbridge.workflows.event_table import EVENT_TABLE

OPERATION_EVENTS = frozenset({EventType.OPERATION_STARTED, EventType.OPERATION_CONFIRMED})

# What undoes a finished step when an order is cancelled.
COMPENSATIONS: dict[c.StepKind, c.StepKind] = {
    c.StepKind.MES_DISPATCH: c.StepKind.MES_RECALL,
    c.StepKind.WMS_STAGE: c.StepKind.WMS_RELEASE_STAGING,
    c.StepKind.WMS_BLOCK: c.StepKind.WMS_UNBLOCK,
}


class OrderLogic(AggregationMixin):
    """Validates events, changes state and plans steps by the tables (`event_table.py`, `states.py`)."""

    # -- validation ------------------------------------------------------------------------------
    def rejection_reason(self, ev: PlantEvent) -> str | None:
        """Why this event cannot be accepted in the order's current state, or None."""
        order = self.s.order
        if ev.plant != order.plant:
            return f"event is for plant {ev.plant}, but order {order.number} belongs to plant {order.plant}"
        if ev.order != order.number:
            return f"event is for order {ev.order}, but this is order {order.number}"
        state = self.s.state
        if state in END_STATES:
            return f"order {order.number} is {state.value}; it takes no more events"
        if state is OrderState.PLANNED:
            return f"order {order.number} is not released yet"
        if self.s.erp_closed is not None:
            return self.s.erp_closed
        if state not in EVENT_TABLE[ev.event_type].accepted_in:
            if ev.event_type is EventType.QUALITY_DISPOSITION:
                return f"order {order.number} is not on quality hold; there is nothing to dispose"
            if ev.event_type is EventType.QUALITY_HOLD:
                return f"order {order.number} is already on quality hold ({self.s.hold.reason if self.s.hold else ''})"
            return f"{ev.event_type.value} is not allowed while order {order.number} is {state.value}"
        if ev.event_type in OPERATION_EVENTS:
            removed = self.s.removed_operations.get(ev.operation or "")
            if removed is not None and order.operation(ev.operation or "") is None:
                return f"{removed}; no more events for it"
            progress = self.s.operations.get(ev.operation or "")
            if progress is None:
                known = ", ".join(self.s.operations)
                return f"operation {ev.operation} is not in order {order.number} (operations {known})"
            if progress.final:
                return f"operation {progress.number} was finally confirmed; no more events for it"
            if ev.event_type is EventType.OPERATION_CONFIRMED:
                return self._confirmation_problem(ev, progress)
        if ev.event_type is EventType.DOWNTIME_ENDED and ev.work_center not in self.s.downtime_open:
            return f"no open downtime on work center {ev.work_center}"
        return None

    def _confirmation_problem(self, ev: PlantEvent, progress: OperationProgress) -> str | None:
        assert ev.yield_qty is not None
        if ev.yield_qty.uom != progress.uom:
            return f"yield unit {ev.yield_qty.uom} differs from operation {progress.number}'s unit {progress.uom}"
        scrap = ev.scrap_qty.quantity if ev.scrap_qty else Decimal(0)
        total = progress.yield_total + progress.scrap_total + ev.yield_qty.quantity + scrap
        tolerance = self.s.order.overdelivery_tolerance_pct
        limit = progress.planned * (1 + tolerance / 100)
        if total > limit:
            return (
                f"over-confirmation: operation {progress.number} would reach {total} {progress.uom} "
                f"(yield+scrap) but {progress.planned} are planned with {tolerance}% tolerance (limit {limit})"
            )
        return None

    # -- lifecycle -------------------------------------------------------------------------------
    def release(self, now: datetime) -> None:
        self.s.released_at = now
        self.transition(OrderState.RELEASED, now, "released in the ERP")
        self.add_step(now, release_step("dispatch"), c.Dispatch(), c.StepKind.MES_DISPATCH, event_id="release")
        self.add_step(now, release_step("stage"), c.Stage(), c.StepKind.WMS_STAGE, event_id="release")

    def apply(self, ev: PlantEvent, now: datetime) -> list[Step]:
        """Change state for an accepted event; return the steps it planned."""
        before = len(self.s.steps)
        self.last_buffered = False
        self.s.events_accepted += 1
        self.note(now, "event", ev.summary, event_id=ev.event_id)
        handler = {
            EventType.OPERATION_STARTED: self._started,
            EventType.OPERATION_CONFIRMED: self._confirmed,
            EventType.MATERIAL_CONSUMED: self._consumed,
            EventType.DOWNTIME_STARTED: self._downtime_started,
            EventType.DOWNTIME_ENDED: self._downtime_ended,
            EventType.QUALITY_RESULT: self._quality_result,
            EventType.QUALITY_HOLD: self._quality_hold,
            EventType.QUALITY_DISPOSITION: self._quality_disposition,
            EventType.MAINTENANCE_REQUESTED: self._maintenance,
        }[ev.event_type]
        handler(ev, now)
        planned = self.s.steps[before:]
        for step in planned:
            if step.kind.posts_to_erp and step.event_id == ev.event_id:
                step.ack_to = ev.source
                step.event_at = ev.occurred_at
            if step.kind.posts_to_erp and step.ack_to is not None:
                step.trigger = ev.event_id
        return planned

    def advance(self, ev: PlantEvent, now: datetime, why: str) -> None:
        """The state change the event table lists for this event in the current state, if any."""
        target = EVENT_TABLE[ev.event_type].moves.get(self.s.state)
        if target is not None:
            self.transition(target, now, why)

    def _started(self, ev: PlantEvent, now: datetime) -> None:
        self.s.operations[ev.operation or ""].started = True
        self.advance(ev, now, f"operation {ev.operation} started")

    def _confirmed(self, ev: PlantEvent, now: datetime) -> None:
        assert ev.yield_qty is not None and ev.operation is not None
        progress = self.s.operations[ev.operation]
        scrap = ev.scrap_qty.quantity if ev.scrap_qty else Decimal(0)
        progress.started = True
        progress.yield_total += ev.yield_qty.quantity
        progress.scrap_total += scrap
        progress.rework_total += ev.rework_qty.quantity if ev.rework_qty else Decimal(0)
        progress.confirmations += 1
        progress.final = progress.final or ev.final
        if not ev.final and self.s.policy.partial_confirmations == "aggregate":
            self._buffer_confirmation(ev, now)
            self.advance(ev, now, f"operation {ev.operation} confirmed")
            return
        buffered = self.s.buffered_confirmations.pop(ev.operation, None)
        yield_qty, scrap_qty, rework_qty, activities = ev.yield_qty, ev.scrap_qty, ev.rework_qty, ev.activities
        if buffered is not None:  # the operation ends: its buffered partial quantities go with the final
            uom = ev.yield_qty.uom
            extra = ev.activities or ActivityTimes()
            yield_qty = Quantity(quantity=buffered.yield_qty + ev.yield_qty.quantity, uom=uom)
            scrap_qty = Quantity(quantity=buffered.scrap_qty + scrap, uom=uom)
            rework_qty = Quantity(
                quantity=buffered.rework_qty + (ev.rework_qty.quantity if ev.rework_qty else Decimal(0)), uom=uom
            )
            activities = ActivityTimes(
                setup_min=buffered.setup_min + extra.setup_min,
                machine_min=buffered.machine_min + extra.machine_min,
                labor_min=buffered.labor_min + extra.labor_min,
            )
        produced = yield_qty.quantity + (scrap_qty.quantity if scrap_qty else Decimal(0))
        cmd = c.ConfirmOperation(
            operation=ev.operation,
            work_center=ev.work_center or progress.work_center,
            yield_qty=yield_qty,
            scrap_qty=scrap_qty,
            rework_qty=rework_qty,
            reason=ev.reason,
            final=ev.final,
            activities=activities,
            personnel=ev.personnel,
            goods_movements=self._backflush(ev.operation, produced),
        )
        step = self.add_step(
            now, event_step(ev.event_id, "confirm"), cmd, c.StepKind.ERP_CONFIRM_OPERATION, event_id=ev.event_id
        )
        if buffered is not None:
            step.also_events = list(buffered.event_ids)
        if ev.final:
            self.flush_consumption(now)
        self.advance(ev, now, f"operation {ev.operation} confirmed")
        if self._all_final():
            self._complete(now, after=step.id)

    def _all_final(self) -> bool:
        required = [op.number for op in self.s.order.operations if op.confirmation_required]
        last = self.s.order.last_operation.number
        return self.s.operations[last].final and all(self.s.operations[n].final for n in required)

    def complete(self, now: datetime, *, after: str | None) -> None:
        """Plan the completion postings (goods receipt, completion, transfer, shipment readiness)."""
        self._complete(now, after=after)

    def _complete(self, now: datetime, *, after: str | None) -> None:
        order = self.s.order
        produced = Quantity(quantity=self.s.operations[order.last_operation.number].yield_total, uom=order.quantity.uom)
        gr = self.add_step(
            now,
            completion_step("goods_receipt"),
            c.GoodsReceipt(quantity=produced, storage_location=order.storage_location, batch=order.batch),
            c.StepKind.ERP_GOODS_RECEIPT,
            event_id="completion",
            after=[after] if after else [],
            blocked_by_hold=True,
        )
        self.add_step(
            now,
            completion_step("complete_order"),
            c.CompleteOrder(),
            c.StepKind.ERP_COMPLETE_ORDER,
            event_id="completion",
            after=[gr.id],
            blocked_by_hold=True,
        )
        transfer = self.add_step(
            now,
            completion_step("transfer"),
            c.Transfer(quantity=produced),
            c.StepKind.WMS_TRANSFER,
            event_id="completion",
            after=[gr.id],
            blocked_by_hold=True,
        )
        self.add_step(
            now,
            completion_step("shipment_ready"),
            c.ShipmentReady(quantity=produced),
            c.StepKind.WMS_SHIPMENT_READY,
            event_id="completion",
            after=[transfer.id],
            blocked_by_hold=True,
        )
        if self.s.hold is not None:
            self.s.hold.return_state = OrderState.COMPLETED
            self.note(now, "state", "all operations final; completion waits for the quality hold")
        else:
            self.s.completed_at = now
            self.transition(OrderState.COMPLETED, now, "all operations finally confirmed")

    def unknown_material(self, ev: PlantEvent) -> str | None:
        """Why a consumption needs a supervisor under `unknown_material: exception` (None: it does not)."""
        if self.s.policy.unknown_material != "exception" or ev.material is None:
            return None
        components = sorted({comp.material for comp in self.s.order.components})
        if ev.material in components:
            return None
        known = ", ".join(components) or "none"
        return (f"material {ev.material} is not a component of order {self.s.order.number} (components: {known}); "
                "retry posts the goods issue as sent, skip drops it")

    def _consumed(self, ev: PlantEvent, now: datetime) -> None:
        assert ev.material is not None and ev.quantity is not None
        review = self.unknown_material(ev) if self.unknown_material_review else None
        if self.s.policy.consumption == "aggregate" and review is None:
            self._buffer_consumption(ev, now)
            return
        item = c.GoodsMovementItem(
            material=ev.material,
            quantity=ev.quantity,
            movement_type="261",
            storage_location=ev.storage_location,
            batch=ev.batch,
        )
        step = self.add_step(
            now,
            event_step(ev.event_id, "goods_issue"),
            c.GoodsMovement(items=[item]),
            c.StepKind.ERP_GOODS_MOVEMENT,
            event_id=ev.event_id,
        )
        if review is not None:
            step.review = review
            self.note(now, "exception", f"consumption held for a supervisor: {review}", event_id=ev.event_id)

    def _downtime_started(self, ev: PlantEvent, now: datetime) -> None:
        self.s.downtime_open[ev.work_center or ""] = ev.occurred_at

    def _downtime_ended(self, ev: PlantEvent, now: datetime) -> None:
        started = self.s.downtime_open.pop(ev.work_center or "")
        duration = ev.occurred_at - started
        if duration >= self.s.policy.long_downtime and not self.downtime_watch:
            minutes = int(duration.total_seconds() // 60)
            self.alert(
                now,
                ev.event_id,
                "warning",
                "downtime",
                f"work center {ev.work_center} was down {minutes} min ({ev.reason or 'no reason given'})",
            )

    def _quality_result(self, ev: PlantEvent, now: datetime) -> None:
        chars = [ch.model_dump(mode="json") for ch in ev.characteristics or []]
        self.add_step(
            now,
            event_step(ev.event_id, "inspection"),
            c.Inspection(passed=bool(ev.passed), operation=ev.operation, characteristics=chars),
            c.StepKind.QMS_INSPECTION,
            event_id=ev.event_id,
        )
        if not ev.passed and self.s.hold is None:
            failed = ", ".join(ch.name for ch in ev.characteristics or [] if not ch.ok) or "inspection failed"
            self.enter_hold(now, f"inspection failed: {failed}", ev.event_id, ev.source)

    def _quality_hold(self, ev: PlantEvent, now: datetime) -> None:
        self.enter_hold(now, ev.reason or "quality hold", ev.event_id, ev.source)

    def _quality_disposition(self, ev: PlantEvent, now: datetime) -> None:
        assert ev.decision is not None
        self.dispose(now, ev.decision, ev.quantity, by=ev.source, key=ev.event_id, reason=ev.reason)

    def _maintenance(self, ev: PlantEvent, now: datetime) -> None:
        assert ev.equipment is not None and ev.priority is not None and ev.description is not None
        if self.maintenance_child:
            self.request_maintenance(
                now, ev.event_id, ev.equipment, ev.work_center, ev.priority, ev.description, ev.source
            )
            return
        cmd = c.MaintenanceNotification(
            equipment=ev.equipment, work_center=ev.work_center, priority=ev.priority, description=ev.description
        )
        self.add_step(
            now,
            event_step(ev.event_id, "notification"),
            cmd,
            c.StepKind.ERP_MAINTENANCE_NOTIFICATION,
            event_id=ev.event_id,
        )
        if ev.priority <= 2:
            self.alert(
                now,
                ev.event_id,
                "critical",
                "maintenance",
                f"priority {ev.priority} maintenance on {ev.equipment}: {ev.description[:200]}",
            )

    # -- quality hold ----------------------------------------------------------------------------
    def enter_hold(self, now: datetime, reason: str, key: str, by: str) -> None:
        self.s.hold = HoldRecord(reason=reason, since=now, return_state=self.s.state, event_id=key)
        self.transition(OrderState.QUALITY_HOLD, now, reason)
        self.add_step(
            now, event_step(key, "block"), c.StockBlock(blocked=True, reason=reason), c.StepKind.WMS_BLOCK, event_id=key
        )
        self.add_step(now, event_step(key, "mes_hold"), c.Hold(reason=reason), c.StepKind.MES_HOLD, event_id=key)
        self.alert(now, key, "warning", "quality_hold", f"order {self.s.order.number} on quality hold: {reason}")
        self.audit(event_step(key, "hold"), by, "quality_hold", reason=reason)

    def dispose(
        self, now: datetime, decision: str, quantity: Quantity | None, *, by: str, key: str, reason: str | None
    ) -> None:
        hold = self.s.hold
        assert hold is not None
        ud = c.UsageDecision(decision=decision, quantity=quantity, reason=reason)
        self.add_step(now, event_step(key, "usage_decision"), ud, c.StepKind.ERP_USAGE_DECISION, event_id=key)
        if decision == "scrap" and quantity is not None and quantity.quantity > 0:
            item = c.GoodsMovementItem(
                material=self.s.order.material,
                quantity=quantity,
                movement_type="551",
                storage_location=self.s.order.storage_location,
                batch=self.s.order.batch,
            )
            self.add_step(
                now,
                event_step(key, "scrap"),
                c.GoodsMovement(items=[item]),
                c.StepKind.ERP_GOODS_MOVEMENT,
                event_id=key,
            )
        self.add_step(
            now,
            event_step(key, "unblock"),
            c.StockBlock(blocked=False, reason=decision),
            c.StepKind.WMS_UNBLOCK,
            event_id=key,
        )
        self.add_step(
            now,
            event_step(key, "mes_release"),
            c.Hold(reason=decision, released=True),
            c.StepKind.MES_RELEASE_HOLD,
            event_id=key,
        )
        self.s.hold = None
        target = hold.return_state
        if target is OrderState.COMPLETED:
            self.s.completed_at = now
        self.transition(target, now, f"hold released by {by}: {decision}")
        self.audit(
            event_step(key, "disposition"),
            by,
            "quality_disposition",
            decision=decision,
            reason=reason,
            quantity=str(quantity.quantity) if quantity else None,
        )

    # -- cancellation ----------------------------------------------------------------------------
    def plan_compensations(self, now: datetime) -> list[Step]:
        """The steps that undo what was done, newest first."""
        done = [s for s in self.s.steps if s.status == "done" and not s.compensation]
        # A block lifted by a disposition needs no undoing; only a block still in force does.
        outstanding_blocks = sum(1 for s in done if s.kind is c.StepKind.WMS_BLOCK) - sum(
            1 for s in done if s.kind is c.StepKind.WMS_UNBLOCK
        )
        planned: list[Step] = []
        for step in sorted(done, key=lambda s: (s.finished_at or s.created_at, self.s.steps.index(s)), reverse=True):
            undo = COMPENSATIONS.get(step.kind)
            if undo is None:
                continue
            if step.kind is c.StepKind.WMS_BLOCK:
                if outstanding_blocks <= 0:
                    continue
                outstanding_blocks -= 1
            cmd: c.Command
            if undo is c.StepKind.MES_RECALL:
                cmd = c.Recall(reason="order cancelled")
            elif undo is c.StepKind.WMS_RELEASE_STAGING:
                cmd = c.Stage(release=True)
            else:
                cmd = c.StockBlock(blocked=False, reason="order cancelled")
            planned.append(
                self.add_step(now, compensation_step(step.id), cmd, undo, event_id="cancel", compensation=True)
            )
        return planned
