"""The `MaintenanceRequest` child workflow: one maintenance job raised by an order's saga.

A maintenance request from the plant, or a downtime that lasts too long, becomes this workflow
(id `maintenance:{plant}:{order}:{request}`), started by the order saga and left running on its own
(the order does not wait for the machine to be repaired). It creates the maintenance notification in
the ERP (with the external key, so never twice), reserves the spare parts the plant lists for the
equipment in the WMS, raises the downtime alert, then waits for the maintenance team's
`complete_maintenance` signal, alerting and escalating when the plant's maintenance SLA passes.
A step the target system rejects waits for `retry_step` (after the cause is fixed) or `skip_step`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from plantbridge.canonical import commands as c
    from plantbridge.canonical.exceptions import SupervisorAction
    from plantbridge.canonical.fields import Quantity
    from plantbridge.canonical.order import ProductionOrder
    from plantbridge.canonical.policy import PlantPolicy
    from plantbridge.workflows import search_attributes as sa

BUSINESS_ERROR_TYPES = ["BusinessRejection", "IdempotencyConflict"]


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
    status: str = "pending"  # pending | done | rejected | skipped
    documents: list[str] = Field(default_factory=list)
    message: str | None = None


class MaintenanceState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request: MaintenanceInput
    status: str = "open"  # open | waiting_for_decision | completed
    steps: list[MaintenanceStep] = Field(default_factory=list)
    alerts: int = 0
    completed_at: datetime | None = None
    completed_by: str | None = None
    notes: str | None = None


@workflow.defn(name="MaintenanceRequest")
class MaintenanceRequestWorkflow:
    @workflow.init
    def __init__(self, inp: MaintenanceInput) -> None:
        self.state = MaintenanceState(request=inp)
        self._decision: str | None = None
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
        for level in (1, 2):
            try:
                await workflow.wait_condition(lambda: self._completion is not None, timeout=inp.policy.maintenance_sla)
                break
            except TimeoutError:
                await self._alert(
                    level + 1,
                    f"maintenance on {inp.equipment} still open after {inp.policy.maintenance_sla * level} (SLA)",
                )
        await workflow.wait_condition(lambda: self._completion is not None)
        done = self._completion
        assert done is not None
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
        attempt = 0
        while True:
            attempt += 1
            try:
                result = await workflow.execute_activity(
                    kind.value,
                    c.StepRequest(
                        idempotency_key=f"{wf_id}:{kind.value}",
                        workflow_id=wf_id,
                        step_id=f"{self.state.request.request_id}:{kind.value}",
                        kind=kind,
                        order=self.state.request.order,
                        command=command,
                    ),
                    result_type=c.StepResult,
                    start_to_close_timeout=self.state.request.policy.activity_timeout,
                    retry_policy=RetryPolicy(
                        initial_interval=self.state.request.policy.retry_initial,
                        maximum_interval=self.state.request.policy.retry_max_interval,
                        non_retryable_error_types=BUSINESS_ERROR_TYPES,
                    ),
                )
                step.status, step.documents, step.message = "done", result.documents, result.message
                self._details()
                return
            except ActivityError as err:
                cause = err.cause
                step.status = "rejected"
                step.message = cause.message if isinstance(cause, ApplicationError) else str(err)
                self.state.status = "waiting_for_decision"
                self._decision = None
                self._details()
                await self._alert(
                    1,
                    f"{kind.value} for maintenance on {self.state.request.equipment} rejected: {step.message[:300]}",
                    key=f"{kind.value}-{attempt}",
                )
                await workflow.wait_condition(lambda: self._decision is not None)
                self.state.status = "open"
                if self._decision == "skip":
                    step.status = "skipped"
                    self._details()
                    return

    async def _alert(self, level: int, message: str, key: str | None = None) -> None:
        self.state.alerts += 1
        wf_id = workflow.info().workflow_id
        step_key = key or f"alert-{level}"
        try:
            await workflow.execute_activity(
                c.StepKind.NOTIFY_ALERT.value,
                c.StepRequest(
                    idempotency_key=f"{wf_id}:{step_key}",
                    workflow_id=wf_id,
                    step_id=f"{self.state.request.request_id}:{step_key}",
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

    @workflow.signal(name="complete_maintenance")
    def complete_maintenance(self, action: SupervisorAction | None = None) -> None:
        self._completion = action or SupervisorAction(by="maintenance")

    @workflow.signal(name="retry_step")
    def retry_step(self) -> None:
        self._decision = "retry"

    @workflow.signal(name="skip_step")
    def skip_step(self) -> None:
        self._decision = "skip"

    @workflow.query(name="summary")
    def summary(self) -> MaintenanceState:
        return self.state

    def _details(self) -> None:
        r = self.state.request
        lines = [
            f"## Maintenance on {r.equipment} · order {r.order.number} · plant {r.order.plant} · "
            f"**{self.state.status}**",
            f"priority {r.priority}: {r.description}",
            "",
        ]
        lines += [
            f"- {s.kind}: {s.status} {' '.join(s.documents)} {s.message or ''}".rstrip() for s in self.state.steps
        ]
        lines += [
            "",
            'When the job is done, send signal `complete_maintenance` with `{"by": "<name>", '
            '"reason": "<what was done>"}`.',
        ]
        if self.state.status == "waiting_for_decision":
            lines.append("A step was rejected: fix the cause, then send `retry_step` (or `skip_step`).")
        workflow.set_current_details("\n".join(lines))
