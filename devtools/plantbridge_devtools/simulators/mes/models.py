"""Request bodies of the MES API (its own camelCase field names)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from plantbridge_devtools.simulators.mes.codes import DOWNTIME_CODES, HOLD_CODES, SCRAP_CODES, UNITS


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("timestamp needs a UTC offset")
    return value


def _in(codes: dict[str, str], what: str) -> AfterValidator:
    def check(value: str | None) -> str | None:
        if value is not None and value not in codes:
            raise ValueError(f"unknown {what} {value!r}; expected one of {', '.join(codes)}")
        return value

    return AfterValidator(check)


Timestamp = Annotated[datetime | None, AfterValidator(_aware)]
ResourceCode = Annotated[str, Field(pattern=r"^[A-Z0-9][A-Z0-9-]{0,19}$")]
Qty = Annotated[Decimal, Field(ge=0, max_digits=15, decimal_places=3)]
Minutes = Annotated[Decimal, Field(ge=0, le=100000)]
Unit = Annotated[str, _in(UNITS, "unit")]
ScrapCode = Annotated[str | None, _in(SCRAP_CODES, "scrap code")]
DowntimeCode = Annotated[str | None, _in(DOWNTIME_CODES, "downtime code")]
HoldCode = Annotated[str, _in(HOLD_CODES, "hold code")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class RoutingStepIn(Strict):
    step: str = Field(min_length=1, max_length=8, pattern=r"^[0-9A-Za-z]+$")
    resource: ResourceCode
    description: str = Field(default="", max_length=80)
    plannedQty: Qty | None = None
    setupMin: Minutes = Decimal(0)
    runMinPerUnit: Minutes = Decimal(0)


class BomLineIn(Strict):
    material: str = Field(min_length=1, max_length=40)
    quantity: Qty
    unit: Unit
    step: str | None = None


class WorkOrderIn(Strict):
    orderNo: str = Field(min_length=1, max_length=20, pattern=r"^[0-9A-Za-z-]+$")
    plant: str | None = Field(default=None, min_length=1, max_length=4)
    material: str = Field(min_length=1, max_length=40)
    materialText: str = Field(default="", max_length=80)
    quantity: Annotated[Decimal, Field(gt=0, max_digits=15, decimal_places=3)]
    unit: Unit
    priority: int = Field(default=5, ge=1, le=9)
    dueDate: Timestamp = None
    routing: list[RoutingStepIn] = Field(min_length=1, max_length=99)
    bom: list[BomLineIn] = Field(default_factory=list)

    @field_validator("routing")
    @classmethod
    def _unique_steps(cls, value: list[RoutingStepIn]) -> list[RoutingStepIn]:
        steps = [s.step for s in value]
        if len(set(steps)) != len(steps):
            raise ValueError("routing steps must be unique")
        return value


class ChangeIn(Strict):
    """An ERP change to a work order: quantity, routing and BOM as they are now; `close` ends it."""

    changeRef: str = Field(min_length=1, max_length=250)
    quantity: Annotated[Decimal, Field(gt=0, max_digits=15, decimal_places=3)]
    routing: list[RoutingStepIn] = Field(min_length=1, max_length=99)
    bom: list[BomLineIn] = Field(default_factory=list)
    dueDate: Timestamp = None
    close: bool = False
    reason: str = Field(default="", max_length=200)
    erpVersion: str | None = Field(default=None, max_length=80)


class RecallIn(Strict):
    reason: str = Field(default="", max_length=120)


class HoldIn(Strict):
    reasonCode: HoldCode = "H-QUAL"
    text: str = Field(default="", max_length=200)
    source: Literal["INTEGRATION", "SHOPFLOOR"] = "INTEGRATION"
    at: Timestamp = None


class UnholdIn(Strict):
    text: str = Field(default="", max_length=200)


class StepActionIn(Strict):
    operator: str | None = Field(default=None, max_length=40)
    at: Timestamp = None


class ReportIn(Strict):
    goodQty: Qty = Decimal(0)
    scrapQty: Qty = Decimal(0)
    scrapCode: ScrapCode = None
    laborMin: Minutes = Decimal(0)
    machineMin: Minutes = Decimal(0)
    setupMin: Minutes = Decimal(0)
    operator: str | None = Field(default=None, max_length=40)
    at: Timestamp = None


class DowntimeIn(Strict):
    action: Literal["START", "END"]
    code: DowntimeCode = None
    equipment: str | None = Field(default=None, max_length=40, pattern=r"^[0-9A-Za-z._/-]+$")
    workOrderId: str | None = None
    comment: str = Field(default="", max_length=200)
    at: Timestamp = None


class MaintenanceIn(Strict):
    equipment: str = Field(min_length=1, max_length=40, pattern=r"^[0-9A-Za-z._/-]+$")
    priority: int = Field(default=3, ge=1, le=4, description="1 very high .. 4 low")
    text: str = Field(min_length=1, max_length=200)
    workOrderId: str | None = None
    at: Timestamp = None


class AcknowledgementIn(Strict):
    transactionRef: str = Field(min_length=1, max_length=64)
    result: Literal["OK", "NOK"]
    erpDocument: str | None = Field(default=None, max_length=80)
    text: str = Field(default="", max_length=500)
