"""What every part of the planner shares: the state, the timeline, the audit notes, adding steps,
and the one `transition` through which every order state change goes (checked against the table in
`canonical/states.py`). Plain deterministic code; time comes in as an argument.
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from plantbridge.canonical import commands as c
from plantbridge.canonical.fields import Quantity
from plantbridge.canonical.saga import (
    AuditNote,
    MaintenanceRecord,
    OperationProgress,
    SagaState,
    Step,
    TimelineEntry,
)
from plantbridge.canonical.states import OrderState, check_transition
from plantbridge.contract import alert_step, audit_key, event_step

THOUSANDTH = Decimal("0.001")


class PlannerBase:
    def __init__(self, state: SagaState, workflow_id: str) -> None:
        self.s = state
        self.workflow_id = workflow_id
        # Set by the workflow (behind its patch): maintenance requests go to a child workflow.
        self.maintenance_child = False
        # Set by the workflow (behind its patch): long downtimes are alerted while they last.
        self.downtime_watch = False
        # Set by the workflow (behind its patch): consumption of a material not in the order's
        # components is held for a supervisor (plant policy `unknown_material: exception`).
        self.unknown_material_review = False
        # True when the last applied event was buffered for an aggregated posting.
        self.last_buffered = False
        if not state.operations:
            for op in state.order.operations:
                state.operations[op.number] = OperationProgress(
                    number=op.number,
                    work_center=op.work_center,
                    planned=op.planned_qty.quantity,
                    uom=op.planned_qty.uom,
                )

    # -- the one way to change state --------------------------------------------------------------
    def transition(self, target: OrderState, now: datetime, why: str) -> None:
        """Move the order to `target` (no-op when already there); raise on a move the table forbids."""
        check_transition(self.s.state, target)
        if target is not self.s.state:
            self.note(now, "state", f"{self.s.state.value} → {target.value}: {why}")
            self.s.state = target

    # -- timeline, audit, steps -------------------------------------------------------------------
    def note(self, now: datetime, kind: str, text: str, *, event_id: str | None = None, by: str | None = None) -> None:
        self.s.timeline.append(TimelineEntry(at=now, kind=kind, text=text, event_id=event_id, by=by))
        overflow = len(self.s.timeline) - self.s.policy.timeline_limit
        if overflow > 0:
            del self.s.timeline[:overflow]

    def audit(self, key: str, actor: str, action: str, **detail: str | int | bool | None) -> None:
        self.s.pending_audit.append(
            AuditNote(
                dedup_key=audit_key(self.workflow_id, key),
                workflow_id=self.workflow_id,
                plant=self.s.order.plant,
                order=self.s.order.number,
                actor=actor,
                action=action,
                detail=detail,
            )
        )

    def add_step(
        self,
        now: datetime,
        step_id: str,
        command: c.Command,
        kind: c.StepKind,
        *,
        event_id: str | None = None,
        after: list[str] | None = None,
        blocked_by_hold: bool = False,
        compensation: bool = False,
    ) -> Step:
        self.s.step_counter += 1
        step = Step(
            id=step_id,
            kind=kind,
            command=command,
            event_id=event_id,
            after=after or [],
            blocked_by_hold=blocked_by_hold,
            compensation=compensation,
            created_at=now,
        )
        self.s.steps.append(step)
        return step

    def alert(self, now: datetime, key: str, severity: str, topic: str, message: str, level: int = 1) -> Step:
        cmd = c.Alert(severity=severity, topic=topic, message=message, level=level)
        return self.add_step(now, alert_step(key), cmd, c.StepKind.NOTIFY_ALERT)

    # -- bill of materials ------------------------------------------------------------------------
    def _backflush(self, operation: str, produced: Decimal) -> list[c.GoodsMovementItem]:
        order = self.s.order
        last = order.last_operation.number
        items = []
        for comp in order.components:
            if not comp.backflush or (comp.operation or last) != operation:
                continue
            qty = (comp.quantity.quantity * c.ratio(produced, order.quantity.quantity)).quantize(
                THOUSANDTH, rounding=ROUND_HALF_UP
            )
            if qty > 0:
                items.append(
                    c.GoodsMovementItem(
                        material=comp.material,
                        quantity=Quantity(quantity=qty, uom=comp.quantity.uom),
                        movement_type="261",
                        storage_location=comp.storage_location,
                        batch=comp.batch,
                        reservation=comp.reservation,
                        reservation_item=comp.reservation_item,
                    )
                )
        return items

    # -- maintenance ------------------------------------------------------------------------------
    def request_maintenance(
        self,
        now: datetime,
        key: str,
        equipment: str,
        work_center: str | None,
        priority: int,
        description: str,
        source: str,
    ) -> MaintenanceRecord:
        record = MaintenanceRecord(
            request_id=key,
            equipment=equipment,
            work_center=work_center,
            priority=priority,
            description=description,
            requested_at=now,
            source=source,
        )
        self.s.maintenance.append(record)
        self.note(now, "maintenance", f"maintenance requested on {equipment} (priority {priority}): {description}")
        self.audit(
            event_step(key, "maintenance"), source, "maintenance_requested", equipment=equipment, priority=priority
        )
        return record
