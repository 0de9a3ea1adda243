"""The `MaintenanceRequest` child workflow: one maintenance job raised by an order's saga.

A maintenance request from the plant, or a downtime that lasts too long, becomes this workflow
(id `maintenance:{plant}:{order}:{request}`), started by the order saga and left running on its own
(the order does not wait for the machine to be repaired). It creates the maintenance notification in
the ERP (with the external key, so never twice), reserves the spare parts the plant lists for the
equipment in the WMS, raises the downtime alert, then waits for the maintenance team's
`complete_maintenance` signal, alerting and escalating when the plant's maintenance SLA passes.
A step the target system rejects opens an exception (`EXC-n`, as in the order saga, audited) and
waits for `retry_step` (after the cause is fixed), `skip_step` or `override_step` (with the document
posted by hand), each carrying who decided (`StepDecision`). Running a step and reading its failure
are shared with the order saga (`step_calls.py`); the exceptions are behind the patch
`maintenance-exceptions` (children started before it keep the bare decision).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from plantbridge import contract
    from plantbridge.canonical import commands as c
    from plantbridge.canonical.exceptions import ExceptionResolution, OrderException, StepDecision, SupervisorAction
    from plantbridge.canonical.fields import Quantity
    from plantbridge.canonical.order import ProductionOrder
    from plantbridge.canonical.policy import PlantPolicy
    from plantbridge.canonical.saga import AuditNote
    from plantbridge.workflows import patches
    from plantbridge.workflows import search_attributes as sa
    from plantbridge.workflows.step_calls import (
        Category,
        apply_resolution,
        failure_category,
        failure_info,
        open_exception,
        refusal,
        step_heartbeat_timeout,
        step_retry_policy,
    )
    from plantbridge.workflows.timers import escalate_until


class MaintenanceInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order: ProductionOrder
    policy: PlantPolicy
    request_id: str
    equipment: str
    work_center: str | None = None
    priority: int = Field(ge=1, le=4)
    description: str
    requested_at: datetime
    source: str


class MaintenanceStep(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str
    status: str = "pending"  # pending | done | rejected | skipped | overridden
    documents: list[str] = Field(default_factory=list)
    message: str | None = None
    exception_id: str | None = None


class MaintenanceState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request: MaintenanceInput
    status: str = "open"  # open | waiting_for_decision | completed
    steps: list[MaintenanceStep] = Field(default_factory=list)
    alerts: int = 0
    completed_at: datetime | None = None
    completed_by: str | None = None
    notes: str | None = None
    exceptions: list[OrderException] = Field(default_factory=list)


@workflow.defn(name=contract.MAINTENANCE_WORKFLOW)
class MaintenanceRequestWorkflow:
    """One maintenance job: ERP notification, spare parts, alert, then wait for the team."""

    @workflow.init
    def __init__(self, inp: MaintenanceInput) -> None:
        self.state = MaintenanceState(request=inp)
        self._decision: str | None = None
        self._by: StepDecision | None = None
        self._completion: SupervisorAction | None = None

    @workflow.run
    async def run(self, inp: MaintenanceInput) -> MaintenanceState:
        workflow.upsert_search_attributes(
            [
                sa.PLANT.value_set(inp.order.plant),
                sa.ORDER_NUMBER.value_set(inp.order.number),
                sa.WORK_CENTER.value_set([inp.work_center] if inp.work_center else []),
            ]
        )
        self._details()
        await self._step(
            c.StepKind.ERP_MAINTENANCE_NOTIFICATION,
            c.MaintenanceNotification(
                equipment=inp.equipment, work_center=inp.work_center, priority=inp.priority, description=inp.description
            ),
        )
        parts = inp.policy.spare_parts.get(inp.equipment, [])
        if parts:
            items = [
                c.GoodsMovementItem(
                    material=p.material, quantity=Quantity(quantity=p.quantity, uom=p.uom), movement_type="261"
                )
                for p in parts
            ]
            await self._step(c.StepKind.WMS_RESERVE, c.Reservation(equipment=inp.equipment, items=items))
        await self._alert(
            1,
            f"maintenance on {inp.equipment} (priority {inp.priority}) for order "
            f"{inp.order.number}: {inp.description[:200]}",
        )
        sla = inp.policy.maintenance_sla

        async def overdue(level: int) -> None:
            await self._alert(level + 1, f"maintenance on {inp.equipment} still open after {sla * level} (SLA)")

        await escalate_until(lambda: self._completion is not None, sla, sla, overdue)
        await workflow.wait_condition(lambda: self._completion is not None)
        done = self._completion
        assert done is not None
        if patches.NO_EPOCH.on(patches.MAINTENANCE_COMPLETION_AUDIT):
            # Who reported the job done (Temporal UI, CLI), with their note, in the audit trail.
            await self._audit(contract.MAINTENANCE_COMPLETED_AUDIT, done.by, "maintenance_completed",
                              reason=done.reason)
        self.state.status = "completed"
        self.state.completed_at = workflow.now()
        self.state.completed_by = done.by
        self.state.notes = done.reason
        self._details()
        return self.state

    async def _step(self, kind: c.StepKind, command: c.Command) -> None:
        step = MaintenanceStep(kind=kind.value)
        self.state.steps.append(step)
        wf_id = workflow.info().workflow_id
        request = self.state.request
        attempt = 0
        while True:
            attempt += 1
            try:
                result = await workflow.execute_activity(
                    kind.value,
                    c.StepRequest(
                        idempotency_key=contract.idempotency_key(wf_id, kind.value),
                        workflow_id=wf_id,
                        step_id=contract.maintenance_step_id(request.request_id, kind.value),
                        kind=kind,
                        order=request.order,
                        command=command,
                    ),
                    result_type=c.StepResult,
                    start_to_close_timeout=request.policy.activity_timeout,
                    heartbeat_timeout=step_heartbeat_timeout(request.policy),
                    retry_policy=step_retry_policy(request.policy),
                )
                step.status, step.documents, step.message = "done", result.documents, result.message
                self._close(step, "resolved")
                self._details()
                return
            except ActivityError as err:
                failure = failure_info(err)
                step.status, step.message = "rejected", failure[0]
                self.state.status = "waiting_for_decision"
                self._decision = None
                patched = patches.NO_EPOCH.on(patches.MAINTENANCE_EXCEPTIONS)
                exc = self._open(step, kind, failure, failure_category(err)) if patched else None
                self._details()
                await self._alert(
                    1,
                    f"{kind.value} for maintenance on {request.equipment} rejected: {failure[0][:300]}",
                    key=contract.maintenance_rejection_alert_key(kind.value, attempt),
                )
                if exc is not None:
                    await self._audit(
                        contract.exception_audit_key(exc.id, "opened", exc.attempts),
                        "plantbridge",
                        "exception_opened",
                        exception_id=exc.id,
                        step=kind.value,
                        message=exc.message[:500],
                        code=exc.erp_code,
                    )
                await workflow.wait_condition(lambda: self._decision is not None)
                self.state.status = "open"
                if exc is not None:
                    await self._decided(exc)
                if self._decision == "skip":
                    step.status = "skipped"
                    self._close(step, "skipped")
                    self._details()
                    return
                if self._decision == "override" and exc is not None:
                    doc = exc.override_document
                    step.status, step.documents = "overridden", [doc] if doc else []
                    step.message = f"overridden by {exc.resolved_by}"
                    self._close(step, "overridden")
                    self._details()
                    return

    def _open(
        self,
        step: MaintenanceStep,
        kind: c.StepKind,
        failure: tuple[str, str | None, list[str]],
        category: Category,
    ) -> OrderException:
        existing = next((e for e in self.state.exceptions if e.id == step.exception_id), None)
        exc = open_exception(
            self.state.exceptions,
            existing,
            step_id=contract.maintenance_step_id(self.state.request.request_id, kind.value),
            step_kind=kind.value,
            system=kind.system,
            event_id=self.state.request.request_id,
            failure=failure,
            now=workflow.now(),
            category=category,
        )
        step.exception_id = exc.id
        return exc

    def _close(self, step: MaintenanceStep, status: str) -> None:
        for exc in self.state.exceptions:
            if exc.id == step.exception_id and exc.status != "open" and exc.closed_at is None:
                exc.status = status  # type: ignore[assignment]
                exc.closed_at = workflow.now()

    async def _decided(self, exc: OrderException) -> None:
        """Apply the supervisor's decision (with who and why) to the open exception, and audit it."""
        action, by = self._decision or "retry", self._by or StepDecision()
        resolution = ExceptionResolution(
            exception_id=exc.id,
            action=action,
            by=by.by,
            comment=by.comment,
            document=by.document,
        )
        apply_resolution(exc, resolution)
        if action == "retry":
            exc.closed_at = None
        await self._audit(
            contract.exception_audit_key(exc.id, action, exc.attempts),
            by.by,
            f"exception_{action}",
            exception_id=exc.id,
            step=exc.step_kind,
            comment=by.comment,
            document=by.document,
        )

    async def _audit(self, key: str, actor: str, action: str, **detail: str | int | bool | None) -> None:
        r = self.state.request
        wf_id = workflow.info().workflow_id
        note = AuditNote(
            dedup_key=contract.audit_key(wf_id, key),
            workflow_id=wf_id,
            plant=r.order.plant,
            order=r.order.number,
            actor=actor,
            action=action,
            detail=detail,
        )
        await workflow.execute_activity(
            contract.AUDIT_ACTIVITY,
            note,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1)),
        )

    async def _alert(self, level: int, message: str, key: str | None = None) -> None:
        self.state.alerts += 1
        wf_id = workflow.info().workflow_id
        step_key = key or contract.maintenance_alert_key(level)
        try:
            await workflow.execute_activity(
                c.StepKind.NOTIFY_ALERT.value,
                c.StepRequest(
                    idempotency_key=contract.idempotency_key(wf_id, step_key),
                    workflow_id=wf_id,
                    step_id=contract.maintenance_step_id(self.state.request.request_id, step_key),
                    kind=c.StepKind.NOTIFY_ALERT,
                    order=self.state.request.order,
                    command=c.Alert(
                        severity="critical" if level > 1 else "warning",
                        topic="maintenance",
                        message=message,
                        level=min(level, 3),
                    ),
                ),
                result_type=c.StepResult,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1), maximum_attempts=20),
            )
        except ActivityError:
            workflow.logger.warning("maintenance alert could not be sent: %s", message)

    @workflow.signal(name=contract.SIGNAL_COMPLETE_MAINTENANCE)
    def complete_maintenance(self, action: SupervisorAction | None = None) -> None:
        """The maintenance team (Temporal UI, CLI) reports the job done, with who and what was done."""
        self._completion = action or SupervisorAction(by="maintenance")

    @workflow.signal(name=contract.SIGNAL_RETRY_STEP)
    def retry_step(self, decision: StepDecision | None = None) -> None:
        """A supervisor retries the rejected step after fixing its cause (no argument: by `maintenance`)."""
        self._decide("retry", decision)

    @workflow.signal(name=contract.SIGNAL_SKIP_STEP)
    def skip_step(self, decision: StepDecision | None = None) -> None:
        """A supervisor skips the rejected step (no argument: by `maintenance`)."""
        self._decide("skip", decision)

    @workflow.signal(name=contract.SIGNAL_OVERRIDE_STEP)
    def override_step(self, decision: StepDecision) -> None:
        """A supervisor posted the rejected step by hand: `document` becomes the step's result."""
        self._decide("override", decision)

    def _decide(self, action: str, decision: StepDecision | None) -> None:
        exc = next((e for e in self.state.exceptions if e.status == "open"), None)
        if exc is not None and decision is not None:
            probe = ExceptionResolution(
                exception_id=exc.id,
                action=action,
                by=decision.by,
                document=decision.document,
            )
            if decision.exception_id not in (None, exc.id) or refusal(exc, probe) is not None:
                return  # not the exception that waits, or an override without its document
        elif action == "override":
            return  # an override needs an open exception (children started after `maintenance-exceptions`)
        self._by = decision
        self._decision = action

    @workflow.query(name=contract.QUERY_MAINTENANCE_SUMMARY)
    def summary(self) -> MaintenanceState:
        """The request, its steps, exceptions and completion (CLI, tests)."""
        return self.state

    def _details(self) -> None:
        r = self.state.request
        lines = [
            f"## Maintenance on {r.equipment} · order {r.order.number} · plant {r.order.plant} · "
            f"**{self.state.status}**",
            f"priority {r.priority}: {r.description}",
            "",
        ]
        for s in self.state.steps:
            exc = f" ({s.exception_id})" if s.exception_id else ""
            lines.append(f"- {s.kind}: {s.status}{exc} {' '.join(s.documents)} {s.message or ''}".rstrip())
        lines += [
            "",
            'When the job is done, send signal `complete_maintenance` with `{"by": "<name>", '
            '"reason": "<what was done>"}`.',
        ]
        if self.state.status == "waiting_for_decision":
            lines += [
                "",
                "A step was rejected: fix the cause, then send `retry_step` (or `skip_step`, or `override_step` "
                'with `"document"`) with `{"by": "<your name>"}`.',
            ]
        workflow.set_current_details("\n".join(lines))
