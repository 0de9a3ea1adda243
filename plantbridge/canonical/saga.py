"""The saga's state and what it shows: steps, postings, timeline, alerts, summary.

The state is one object, carried across continue-as-new; the `summary` query returns it.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from plantbridge.canonical.commands import Command, StepKind, StepResult
from plantbridge.canonical.exceptions import OrderException
from plantbridge.canonical.order import ProductionOrder
from plantbridge.canonical.policy import PlantPolicy
from plantbridge.canonical.states import OrderState

StepStatus = Literal["pending", "running", "done", "parked", "skipped", "overridden", "cancelled"]
FINISHED_STEP_STATUSES: frozenset[str] = frozenset({"done", "skipped", "overridden", "cancelled"})


class Step(BaseModel):
    """One call to an outside system, executed by the lane of that system, in order."""

    model_config = ConfigDict(extra="forbid")

    id: str
    kind: StepKind
    command: Command
    event_id: str | None = None
    status: StepStatus = "pending"
    # Step ids that must be finished first (e.g. goods receipt before the finished-goods transfer).
    after: list[str] = Field(default_factory=list)
    # Completion steps wait while the order is on quality hold.
    blocked_by_hold: bool = False
    # Steps created by cancellation run outside the lanes, in reverse order.
    compensation: bool = False
    attempts: int = 0
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    result: StepResult | None = None
    exception_id: str | None = None
    # The source system that hears this posting's ERP outcome (business acknowledgement).
    ack_to: str | None = None
    # When the plant event behind this step happened (event-to-posting latency).
    event_at: datetime | None = None
    # The SLA level already alerted for this step (posting overdue).
    sla_level: int = 0
    # Further plant events whose quantities this (aggregated) posting carries.
    also_events: list[str] = Field(default_factory=list)
    # The W3C trace context of the plant event behind this step (empty when tracing is off).
    trace: dict[str, str] = Field(default_factory=dict)
    # The plant event whose handling planned this posting (its postings are acknowledged together).
    trigger: str | None = None
    # Why a supervisor must look at this step before it runs (e.g. a material not in the order's
    # components): it is parked as an exception first; `retry` clears it and runs the step.
    review: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STEP_STATUSES

    @property
    def lane(self) -> str:
        return self.kind.system


class OperationProgress(BaseModel):
    model_config = ConfigDict(extra="forbid")

    number: str
    work_center: str
    planned: Decimal
    uom: str
    started: bool = False
    yield_total: Decimal = Decimal(0)
    scrap_total: Decimal = Decimal(0)
    rework_total: Decimal = Decimal(0)
    final: bool = False
    confirmations: int = 0


class TimelineEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    at: datetime
    kind: str
    text: str
    event_id: str | None = None
    by: str | None = None


class AlertRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    topic: str
    level: int
    at: datetime
    message: str


class HoldRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str
    since: datetime
    return_state: OrderState
    event_id: str | None = None


class BufferedConfirmation(BaseModel):
    """Partial confirmations of one operation, summed until the operation ends or the interval passes."""

    model_config = ConfigDict(extra="forbid")

    operation: str
    work_center: str
    uom: str
    yield_qty: Decimal = Decimal(0)
    scrap_qty: Decimal = Decimal(0)
    rework_qty: Decimal = Decimal(0)
    setup_min: Decimal = Decimal(0)
    machine_min: Decimal = Decimal(0)
    labor_min: Decimal = Decimal(0)
    reason: str | None = None
    event_ids: list[str] = Field(default_factory=list)
    source: str
    since: datetime


class BufferedConsumption(BaseModel):
    """Component consumption of one material, storage location and batch, summed until flushed."""

    model_config = ConfigDict(extra="forbid")

    material: str
    storage_location: str | None = None
    batch: str | None = None
    uom: str
    quantity: Decimal = Decimal(0)
    event_ids: list[str] = Field(default_factory=list)
    source: str
    since: datetime


class MaintenanceRecord(BaseModel):
    """A maintenance request the saga handed to a `MaintenanceRequest` child workflow."""

    model_config = ConfigDict(extra="forbid")

    request_id: str
    equipment: str
    work_center: str | None = None
    priority: int
    description: str
    requested_at: datetime
    source: str
    workflow_id: str | None = None
    status: Literal["requested", "started"] = "requested"


class AuditNote(BaseModel):
    """An audit record the saga hands to the store (through the `store.audit` activity)."""

    model_config = ConfigDict(extra="forbid")

    dedup_key: str
    workflow_id: str
    plant: str
    order: str
    actor: str
    action: str
    detail: dict[str, str | int | bool | None] = Field(default_factory=dict)


class SagaState(BaseModel):
    """Everything the saga knows; carried whole across continue-as-new."""

    model_config = ConfigDict(extra="forbid")

    order: ProductionOrder
    policy: PlantPolicy
    state: OrderState = OrderState.PLANNED
    operations: dict[str, OperationProgress] = Field(default_factory=dict)
    steps: list[Step] = Field(default_factory=list)
    exceptions: list[OrderException] = Field(default_factory=list)
    timeline: list[TimelineEntry] = Field(default_factory=list)
    alerts: list[AlertRecord] = Field(default_factory=list)
    hold: HoldRecord | None = None
    seen_event_ids: list[str] = Field(default_factory=list)
    events_accepted: int = 0
    events_rejected: int = 0
    duplicates: int = 0
    released_at: datetime | None = None
    completed_at: datetime | None = None
    posted_at: datetime | None = None
    cancelled_at: datetime | None = None
    cancel_requested_by: str | None = None
    downtime_open: dict[str, datetime] = Field(default_factory=dict)
    runs: int = 1
    step_counter: int = 0
    buffered_confirmations: dict[str, BufferedConfirmation] = Field(default_factory=dict)
    buffered_consumption: list[BufferedConsumption] = Field(default_factory=list)
    maintenance: list[MaintenanceRecord] = Field(default_factory=list)
    pending_audit: list[AuditNote] = Field(default_factory=list)
    # ERP order changes (issue 14): how many were applied, operations the ERP removed (number ->
    # why events for them are refused), and why the ERP closed the order to postings (TECO).
    order_changes: int = 0
    removed_operations: dict[str, str] = Field(default_factory=dict)
    erp_closed: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _drop_retired_fields(cls, data: Any) -> Any:
        # `completion_due` (set, never read) was removed; states carried by running orders still have it.
        if isinstance(data, dict) and "completion_due" in data:
            data = {k: v for k, v in data.items() if k != "completion_due"}
        return data

    @property
    def open_exceptions(self) -> list[OrderException]:
        return [e for e in self.exceptions if e.status in ("open", "retrying")]

    @property
    def has_buffered(self) -> bool:
        return bool(self.buffered_confirmations or self.buffered_consumption)

    @property
    def postings(self) -> list[Step]:
        return [s for s in self.steps if s.kind.posts_to_erp and s.status in ("done", "overridden")]


class OrderStatusView(BaseModel):
    """The short answer of the `state` query."""

    model_config = ConfigDict(extra="forbid")

    workflow_id: str
    plant: str
    order: str
    state: OrderState
    open_exceptions: int
    on_hold: bool


class SagaInput(BaseModel):
    """How the saga starts: the order, its plant's policy, and (after continue-as-new) its state."""

    model_config = ConfigDict(extra="forbid")

    order: ProductionOrder
    policy: PlantPolicy = Field(default_factory=PlantPolicy)
    carried: SagaState | None = None
