"""What the saga asks of the outside systems: one command per step, sent to an activity.

Each command is plain data; the activity for its `kind` hands it to the plant's connector for that
system. The idempotency key travels with it: `{workflow id}:{event id}:{step}`.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from plantbridge import contract
from plantbridge.canonical.events import ActivityTimes
from plantbridge.canonical.fields import Quantity
from plantbridge.canonical.order import ProductionOrder


class StepKind(StrEnum):
    """The activity name of each step, `<system>.<action>`."""

    ERP_CONFIRM_OPERATION = contract.ERP_CONFIRM_OPERATION
    ERP_GOODS_MOVEMENT = contract.ERP_GOODS_MOVEMENT
    ERP_GOODS_RECEIPT = contract.ERP_GOODS_RECEIPT
    ERP_COMPLETE_ORDER = contract.ERP_COMPLETE_ORDER
    ERP_USAGE_DECISION = contract.ERP_USAGE_DECISION
    ERP_MAINTENANCE_NOTIFICATION = contract.ERP_MAINTENANCE_NOTIFICATION
    MES_DISPATCH = contract.MES_DISPATCH
    MES_CHANGE_ORDER = contract.MES_CHANGE_ORDER
    MES_RECALL = contract.MES_RECALL
    MES_HOLD = contract.MES_HOLD
    MES_RELEASE_HOLD = contract.MES_RELEASE_HOLD
    MES_ACKNOWLEDGE = contract.MES_ACKNOWLEDGE
    QMS_INSPECTION = contract.QMS_INSPECTION
    WMS_STAGE = contract.WMS_STAGE
    WMS_RELEASE_STAGING = contract.WMS_RELEASE_STAGING
    WMS_BLOCK = contract.WMS_BLOCK
    WMS_UNBLOCK = contract.WMS_UNBLOCK
    WMS_TRANSFER = contract.WMS_TRANSFER
    WMS_SHIPMENT_READY = contract.WMS_SHIPMENT_READY
    WMS_RESERVE = contract.WMS_RESERVE
    NOTIFY_ALERT = contract.NOTIFY_ALERT

    @property
    def system(self) -> str:
        return self.value.split(".", 1)[0]

    @property
    def posts_to_erp(self) -> bool:
        return self.system == "erp"


class GoodsMovementItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    material: str
    quantity: Quantity
    movement_type: Literal["261", "262", "101", "102", "531", "532", "551", "552"]
    storage_location: str | None = None
    batch: str | None = None
    reservation: str | None = None
    reservation_item: str | None = None


class ConfirmOperation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["confirm_operation"] = "confirm_operation"
    operation: str
    work_center: str
    yield_qty: Quantity
    scrap_qty: Quantity | None = None
    rework_qty: Quantity | None = None
    reason: str | None = None
    final: bool = False
    activities: ActivityTimes | None = None
    personnel: str | None = None
    # Backflushed components issued with the confirmation (SAP: deep insert of goods movements).
    goods_movements: list[GoodsMovementItem] = Field(default_factory=list)
    # The plant-local date of the event (the ERP posting date); the ERP activity fills it in from
    # the event's time and the plant's time zone when the saga leaves it empty.
    posting_date: date | None = None


class GoodsMovement(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["goods_movement"] = "goods_movement"
    items: list[GoodsMovementItem] = Field(min_length=1)
    # The plant-local date of the event (the ERP posting date); the ERP activity fills it in from
    # the event's time and the plant's time zone when the saga leaves it empty.
    posting_date: date | None = None


class GoodsReceipt(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["goods_receipt"] = "goods_receipt"
    quantity: Quantity
    storage_location: str | None = None
    batch: str | None = None
    # The plant-local date of the event (the ERP posting date); the ERP activity fills it in from
    # the event's time and the plant's time zone when the saga leaves it empty.
    posting_date: date | None = None


class CompleteOrder(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["complete_order"] = "complete_order"


class UsageDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["usage_decision"] = "usage_decision"
    decision: Literal["release", "rework", "scrap"]
    quantity: Quantity | None = None
    reason: str | None = None


class MaintenanceNotification(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["maintenance_notification"] = "maintenance_notification"
    equipment: str
    work_center: str | None = None
    priority: int = Field(ge=1, le=4)
    description: str


class Dispatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["dispatch"] = "dispatch"


class ChangeOrder(BaseModel):
    """An ERP change to a dispatched order, for the MES (its work order follows the order as the saga now
    holds it: quantity, dates, routing, BOM); `close` ends the work order (TECO in the ERP)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["change_order"] = "change_order"
    version: str | None = None
    summary: str = ""
    operations_removed: list[str] = Field(default_factory=list)
    close: bool = False


class Recall(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["recall"] = "recall"
    reason: str | None = None


class Hold(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["hold"] = "hold"
    reason: str
    released: bool = False


class Acknowledge(BaseModel):
    """The business outcome of a posting, sent back to the source system."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["acknowledge"] = "acknowledge"
    event_id: str
    status: Literal["posted", "rejected", "skipped", "overridden"]
    documents: list[str] = Field(default_factory=list)
    message: str | None = None
    # Further events whose quantities went into the same (aggregated) posting.
    also: list[str] = Field(default_factory=list)
    # When one acknowledgement covers several postings: each event's own documents (else `documents`).
    documents_by_event: dict[str, list[str]] = Field(default_factory=dict)


class Inspection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["inspection"] = "inspection"
    passed: bool
    operation: str | None = None
    characteristics: list[dict[str, str | bool | None]] = Field(default_factory=list)


class Stage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["stage"] = "stage"
    release: bool = False  # True: give back staged material (compensation)
    # Only these materials (an ERP order change: stage the added, release the removed); None: all.
    materials: list[str] | None = None


class StockBlock(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["stock_block"] = "stock_block"
    blocked: bool
    reason: str | None = None


class Transfer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["transfer"] = "transfer"
    quantity: Quantity
    to_location: str = "FG"


class ShipmentReady(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["shipment_ready"] = "shipment_ready"
    quantity: Quantity


class Reservation(BaseModel):
    """Spare parts reserved in the WMS for a maintenance job."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["reservation"] = "reservation"
    equipment: str
    items: list[GoodsMovementItem] = Field(min_length=1)


class Alert(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["alert"] = "alert"
    severity: Literal["info", "warning", "critical"]
    topic: str
    message: str
    level: int = Field(default=1, ge=1, le=3)


Command = Annotated[
    ConfirmOperation
    | GoodsMovement
    | GoodsReceipt
    | CompleteOrder
    | UsageDecision
    | MaintenanceNotification
    | Dispatch
    | ChangeOrder
    | Recall
    | Hold
    | Acknowledge
    | Inspection
    | Stage
    | StockBlock
    | Transfer
    | ShipmentReady
    | Reservation
    | Alert,
    Field(discriminator="kind"),
]


class StepRequest(BaseModel):
    """The input of every activity."""

    model_config = ConfigDict(extra="forbid")

    idempotency_key: str = Field(max_length=250)
    workflow_id: str
    step_id: str
    kind: StepKind
    order: ProductionOrder
    command: Command
    # When the plant event behind this step happened, for the event-to-posting latency metric.
    event_at: datetime | None = None
    # How many attempts an unexpected (neither transient nor business) error gets before the step
    # is parked for a supervisor: the order policy's `unexpected_error_attempts`; None: the default.
    unexpected_error_attempts: int | None = Field(default=None, ge=1)


class StepResult(BaseModel):
    """What a system answered: its document numbers and a message."""

    model_config = ConfigDict(extra="forbid")

    documents: list[str] = Field(default_factory=list)
    message: str | None = None
    # True when the ledger or the system's own external-key look-up found an earlier posting.
    replayed: bool = False


def command_hash_payload(cmd: BaseModel) -> dict[str, object]:
    """What the ledger hashes of a command: its JSON, without an empty `posting_date` (so a command
    recorded before posting dates existed hashes as it did then)."""
    data: dict[str, object] = cmd.model_dump(mode="json")
    if data.get("posting_date", "") is None:
        del data["posting_date"]
    if data.get("kind") == "stage" and data.get("materials", "") is None:  # added for order changes
        del data["materials"]
    if data.get("kind") == "acknowledge" and data.get("documents_by_event", None) == {}:  # added in issue 17
        del data["documents_by_event"]
    return data


def ratio(part: Decimal, whole: Decimal) -> Decimal:
    """part / whole, 0 for an empty whole (used for backflush proportions)."""
    return part / whole if whole else Decimal(0)


_KEY_NAMESPACE = uuid.UUID("6f0b7c1e-2f55-4c2e-9a51-0c6b1f6c7a10")


def external_key(idempotency_key: str) -> str:
    """The 32-character key stored in the target system's external-reference field.

    SAP's `ExternalSystemConfirmation` / `EX_IDENT` hold 32 characters; the idempotency key is
    longer, so a name-based UUID of it (hex, no dashes) stands in for it, the same on every retry.
    """
    return uuid.uuid5(_KEY_NAMESPACE, idempotency_key).hex.upper()
