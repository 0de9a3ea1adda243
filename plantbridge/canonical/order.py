"""The production order as plantbridge sees it: header, operations, components (ISA-95 aligned)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from plantbridge import contract
from plantbridge.canonical.fields import (
    Code,
    OperationNumber,
    OrderNumber,
    PlantCode,
    Quantity,
    ShortText,
    normalize_order_number,
)

ErpSystem = Literal["sap_s4", "sap_ecc", "odoo", "reference"]


class Operation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    number: OperationNumber
    work_center: Code
    control_key: str = Field(default="PP01", max_length=4)
    description: ShortText = ""
    planned_qty: Quantity
    # Whether the control key asks for a confirmation (SAP: milestone/confirmation required).
    confirmation_required: bool = True


class Component(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item: str = Field(max_length=4, default="0010")
    material: Code
    quantity: Quantity
    operation: OperationNumber | None = None
    backflush: bool = False
    storage_location: str | None = Field(default=None, max_length=4)
    batch: str | None = Field(default=None, max_length=10)
    reservation: str | None = Field(default=None, max_length=10)
    reservation_item: str | None = Field(default=None, max_length=4)


class ErpStatus(BaseModel):
    """The ERP's status flags that end or stop an order (SAP: OrderIsTechnicallyCompleted, OrderIsLocked,
    OrderIsMarkedForDeletion, OrderIsClosed; IDoc: I0045, I0043, I0076, I0046)."""

    model_config = ConfigDict(extra="forbid")

    technically_completed: bool = False
    locked: bool = False
    marked_for_deletion: bool = False
    closed: bool = False


class ProductionOrder(BaseModel):
    model_config = ConfigDict(extra="forbid")

    number: OrderNumber
    plant: PlantCode
    material: Code
    description: ShortText = ""
    quantity: Quantity
    order_type: str = Field(default="PP01", max_length=4)
    start_date: date | None = None
    end_date: date | None = None
    storage_location: str | None = Field(default=None, max_length=4)
    batch: str | None = Field(default=None, max_length=10)
    released: bool = True
    erp_system: ErpSystem = "reference"
    # Over-delivery tolerance in percent (SAP: UEBTO); confirmations beyond it are rejected.
    overdelivery_tolerance_pct: Decimal = Field(default=Decimal(0), ge=0, le=100)
    operations: list[Operation] = Field(min_length=1, max_length=999)
    components: list[Component] = Field(default_factory=list, max_length=9999)
    # The ERP's version of the order: SAP's `LastChangeDateTime` (YYYYMMDDhhmmss), the IDoc's
    # SERIAL, Odoo's write_date, or a content hash (`sha:`) where the ERP has none.
    version: str | None = Field(default=None, max_length=80)
    erp_status: ErpStatus = Field(default_factory=ErpStatus)

    @model_validator(mode="after")
    def _check(self) -> ProductionOrder:
        numbers = [op.number for op in self.operations]
        if len(set(numbers)) != len(numbers):
            raise ValueError(f"order {self.number} has duplicate operation numbers: {sorted(numbers)}")
        for comp in self.components:
            if comp.operation is not None and comp.operation not in numbers:
                raise ValueError(
                    f"component {comp.material} is assigned to operation {comp.operation}, "
                    f"which order {self.number} does not have ({', '.join(numbers)})"
                )
        if self.start_date and self.end_date and self.end_date < self.start_date:
            raise ValueError(f"order {self.number} ends ({self.end_date}) before it starts ({self.start_date})")
        return self

    @property
    def last_operation(self) -> Operation:
        return max(self.operations, key=lambda op: op.number)

    def operation(self, number: str) -> Operation | None:
        for op in self.operations:
            if op.number == number:
                return op
        return None


def workflow_id(plant: str, order: str) -> str:
    """The saga's workflow id: ``production-order:{plant}:{order}`` (order without leading zeros)."""
    return contract.production_order_id(plant, normalize_order_number(order))


class OrderChangeNotice(BaseModel):
    """The ERP says an order changed (`order_changed`): its key and, where known, its version only.

    The saga reads the order itself from the ERP (`erp.read_order`), so no sender can put order data
    into a saga; the version lets it skip a notice older than what it applied.
    """

    model_config = ConfigDict(extra="forbid")

    plant: PlantCode
    order: OrderNumber
    version: str | None = Field(default=None, max_length=80)
    source: str = Field(default="erp", max_length=40, description="sap_event, idoc, odoo, …")


class OrderReleaseNotice(OrderChangeNotice):
    """The ERP released an order whose saga waits `planned` (`order_released`): its key and version only.

    The saga reads the released order from the ERP (`erp.read_order`): no sender (the Temporal UI
    included) can substitute operations or components that would then drive goods issues.
    """


class ReadOrderRequest(BaseModel):
    """The input of `erp.read_order`: which plant's ERP, which order."""

    model_config = ConfigDict(extra="forbid")

    plant: PlantCode
    order: OrderNumber
