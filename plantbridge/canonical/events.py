"""The plant event (ARCHITECTURE §7): what MES, QMS, WMS and the edge agent send about an order."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from plantbridge.canonical.fields import (
    AwareTimestamp,
    Code,
    LongText,
    OperationNumber,
    OrderNumber,
    PlantCode,
    Quantity,
    ShortText,
)


class EventType(StrEnum):
    OPERATION_STARTED = "operation_started"
    OPERATION_CONFIRMED = "operation_confirmed"
    MATERIAL_CONSUMED = "material_consumed"
    DOWNTIME_STARTED = "downtime_started"
    DOWNTIME_ENDED = "downtime_ended"
    QUALITY_RESULT = "quality_result"
    QUALITY_HOLD = "quality_hold"
    QUALITY_DISPOSITION = "quality_disposition"
    MAINTENANCE_REQUESTED = "maintenance_requested"


# The event types' values, in declaration order (for the error text) and as a set (the check, per validation).
_TYPE_VALUES: tuple[str, ...] = tuple(t.value for t in EventType)
_KNOWN_TYPES: frozenset[str] = frozenset(_TYPE_VALUES)


# The fields each event type needs, beyond the common ones.
REQUIRED_FIELDS: dict[EventType, tuple[str, ...]] = {
    EventType.OPERATION_STARTED: ("operation",),
    EventType.OPERATION_CONFIRMED: ("operation", "yield_qty"),
    EventType.MATERIAL_CONSUMED: ("material", "quantity"),
    EventType.DOWNTIME_STARTED: ("work_center",),
    EventType.DOWNTIME_ENDED: ("work_center",),
    EventType.QUALITY_RESULT: ("passed",),
    EventType.QUALITY_HOLD: ("reason",),
    EventType.QUALITY_DISPOSITION: ("decision",),
    EventType.MAINTENANCE_REQUESTED: ("equipment", "priority", "description"),
}


class ActivityTimes(BaseModel):
    model_config = ConfigDict(extra="forbid")

    setup_min: Decimal = Field(default=Decimal(0), ge=0, le=100000)
    machine_min: Decimal = Field(default=Decimal(0), ge=0, le=100000)
    labor_min: Decimal = Field(default=Decimal(0), ge=0, le=100000)


class Characteristic(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: ShortText
    value: str = Field(max_length=100)
    unit: str | None = Field(default=None, max_length=8)
    ok: bool


class PlantEvent(BaseModel):
    """One event from the plant floor about one order, in the canonical wire format."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    event_id: str = Field(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$")
    event_type: EventType
    source: str = Field(min_length=1, max_length=64)
    plant: PlantCode
    order: OrderNumber
    occurred_at: AwareTimestamp
    operation: OperationNumber | None = None
    work_center: Code | None = None
    yield_qty: Quantity | None = None
    scrap_qty: Quantity | None = None
    rework_qty: Quantity | None = None
    reason: ShortText | None = None
    final: bool = False
    activities: ActivityTimes | None = None
    personnel: str | None = Field(default=None, max_length=40)
    material: Code | None = None
    quantity: Quantity | None = None
    batch: str | None = Field(default=None, max_length=10)
    storage_location: str | None = Field(default=None, max_length=4)
    equipment: Code | None = None
    passed: bool | None = None
    characteristics: list[Characteristic] | None = Field(default=None, max_length=200)
    decision: Literal["release", "rework", "scrap"] | None = None
    priority: int | None = Field(default=None, ge=1, le=4)
    description: LongText | None = None

    @field_validator("event_type", mode="before")
    @classmethod
    def _known_type(cls, value: Any) -> Any:
        if isinstance(value, str) and value not in _KNOWN_TYPES:
            raise ValueError(f"unknown event type {value[:40]!r}; expected one of: {', '.join(_TYPE_VALUES)}")
        return value

    @model_validator(mode="after")
    def _fields_for_type(self) -> PlantEvent:
        missing = [name for name in REQUIRED_FIELDS[self.event_type] if getattr(self, name) is None]
        if missing:
            raise ValueError(f"{self.event_type.value} needs {', '.join(missing)}")
        if self.event_type is EventType.OPERATION_CONFIRMED and self.yield_qty is not None:
            for extra in (self.scrap_qty, self.rework_qty):
                if extra is not None and extra.uom != self.yield_qty.uom:
                    raise ValueError(f"scrap/rework unit {extra.uom} differs from the yield unit {self.yield_qty.uom}")
        return self

    @property
    def summary(self) -> str:
        """A one-line description for timelines and audit records."""
        parts = [self.event_type.value]
        if self.operation:
            parts.append(f"op {self.operation}")
        if self.yield_qty is not None:
            parts.append(f"yield {self.yield_qty.quantity} {self.yield_qty.uom}")
        if self.scrap_qty is not None and self.scrap_qty.quantity:
            parts.append(f"scrap {self.scrap_qty.quantity}")
        if self.final:
            parts.append("final")
        if self.material:
            parts.append(self.material)
        if self.quantity is not None:
            parts.append(f"{self.quantity.quantity} {self.quantity.uom}")
        if self.decision:
            parts.append(self.decision)
        if self.reason:
            parts.append(f"reason {self.reason}")
        return " ".join(parts)
