"""The acknowledgement a plant system gets for each event (ARCHITECTURE §7)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from plantbridge.canonical.states import OrderState

AckStatus = Literal["accepted", "rejected", "duplicate"]
ErpStatus = Literal["posted", "pending", "rejected", "not_required"]


class ErpOutcome(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: ErpStatus
    documents: list[str] = Field(default_factory=list)
    message: str | None = None


class Acknowledgement(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: str
    status: AckStatus
    order_state: OrderState | None = None
    erp: ErpOutcome | None = None
    reason: str | None = None
