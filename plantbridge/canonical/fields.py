"""Shared field types: order numbers, operation numbers, quantities, timestamps.

Every validator here speaks to a plant engineer: it says which value is wrong and what is expected.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from plantbridge.canonical.units import UnknownUnitError, normalize_unit

_ORDER_RE = re.compile(r"^[0-9A-Za-z]{1,12}$")
_OPERATION_RE = re.compile(r"^[0-9]{1,4}$")
_CODE_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z_\-./]{0,39}$")


def normalize_order_number(value: Any) -> str:
    """SAP keeps order numbers as CHAR12 with leading zeros; canonically they have none."""
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str):
        raise ValueError("order number must be a string such as '1004157'")
    raw = value.strip()
    if not _ORDER_RE.fullmatch(raw):
        raise ValueError(f"order number {value[:40]!r} is not valid: use 1 to 12 letters or digits, e.g. '1004157'")
    stripped = raw.lstrip("0") if raw.isdigit() else raw
    return stripped or "0"


def sap_order_number(order: str) -> str:
    """The canonical order number as SAP stores it (numeric numbers padded to 12 digits)."""
    return order.zfill(12) if order.isdigit() else order


def normalize_operation(value: Any) -> str:
    """Operation numbers are four digits (``10`` -> ``0010``), as SAP's VORNR."""
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str) or not _OPERATION_RE.fullmatch(value.strip()):
        raise ValueError(f"operation {str(value)[:20]!r} is not valid: use up to 4 digits, e.g. '0010'")
    return value.strip().zfill(4)


def _check_code(value: str) -> str:
    if not _CODE_RE.fullmatch(value):
        raise ValueError(f"{value[:50]!r} is not a valid code: 1 to 40 letters, digits or - _ . / (no spaces)")
    return value


def _iso_only(value: Any) -> Any:
    """Timestamps are ISO 8601 text (or datetimes): numbers would be read as Unix epochs silently."""
    if isinstance(value, bool | int | float) or (isinstance(value, str) and value.strip().lstrip("-").isdigit()):
        raise ValueError("timestamp must be ISO 8601 text with a UTC offset, e.g. '2026-11-26T10:15:00+01:00'")
    return value


def _require_offset(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            "timestamp has no UTC offset; send e.g. '2026-11-26T10:15:00+01:00' "
            "(a naive time is ambiguous across plants and daylight-saving changes)"
        )
    return value


OrderNumber = Annotated[str, BeforeValidator(normalize_order_number)]
OperationNumber = Annotated[str, BeforeValidator(normalize_operation)]
Code = Annotated[str, AfterValidator(_check_code)]
PlantCode = Annotated[str, Field(min_length=1, max_length=4, pattern=r"^[0-9A-Za-z]{1,4}$")]
AwareTimestamp = Annotated[datetime, BeforeValidator(_iso_only), AfterValidator(_require_offset)]
ShortText = Annotated[str, Field(max_length=200)]
LongText = Annotated[str, Field(max_length=2000)]

MAX_QUANTITY = Decimal("9999999999.999")  # SAP QUAN 13,3


class Quantity(BaseModel):
    """A decimal quantity with a UN/ECE Rec. 20 unit; never negative."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    quantity: Decimal
    uom: str = Field(max_length=8)

    @field_validator("quantity", mode="before")
    @classmethod
    def _parse_quantity(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("quantity must be a decimal string such as '40' or '12.5'")
        if isinstance(value, float):
            value = repr(value)
        if isinstance(value, str):
            try:
                parsed = Decimal(value.strip())
            except InvalidOperation:
                raise ValueError(f"quantity {value[:30]!r} is not a decimal number; send e.g. '40' or '12.5'") from None
            value = parsed
        return value

    @field_validator("quantity")
    @classmethod
    def _check_quantity(cls, value: Decimal) -> Decimal:
        if not value.is_finite():
            raise ValueError("quantity must be a finite number")
        if value < 0:
            raise ValueError(f"quantity {value} is negative; quantities are never negative")
        if value > MAX_QUANTITY:
            raise ValueError(f"quantity {value} is larger than the ERP can hold ({MAX_QUANTITY})")
        if value.as_tuple().exponent < -3:  # type: ignore[operator]
            raise ValueError(f"quantity {value} has more than 3 decimals")
        return value

    @field_validator("uom")
    @classmethod
    def _check_uom(cls, value: str) -> str:
        try:
            return normalize_unit(value)
        except UnknownUnitError as err:
            raise ValueError(str(err)) from None

    def __add__(self, other: Quantity) -> Quantity:
        if other.uom != self.uom:
            raise ValueError(f"cannot add {other.uom} to {self.uom}")
        return Quantity(quantity=self.quantity + other.quantity, uom=self.uom)

    @classmethod
    def zero(cls, uom: str) -> Quantity:
        return cls(quantity=Decimal(0), uom=uom)
