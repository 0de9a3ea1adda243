"""Exceptions a saga opens when a step cannot complete, and the supervisor's resolutions."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ExceptionStatus = Literal["open", "retrying", "resolved", "skipped", "overridden"]
ResolutionAction = Literal["retry", "skip", "override"]


class OrderException(BaseModel):
    """A step parked until someone who can fix it acts."""

    model_config = ConfigDict(extra="forbid")

    id: str
    step_id: str
    step_kind: str
    system: str
    event_id: str | None = None
    # `unexpected_error`: the step failed with neither a transient error nor a business rejection
    # (a bug or an unknown answer), parked after its bounded attempts like a rejection.
    # `order_change`: an ERP change the saga cannot apply by itself (a cut below what is confirmed,
    # a removed operation with confirmations); no step waits on it, any resolution closes it.
    # `unknown_material`: consumption of a material not in the order's components, held before it is
    # posted (plant policy `unknown_material: exception`); retry posts it as sent.
    category: Literal[
        "business_rejection", "unexpected_error", "sla", "compensation", "order_change", "unknown_material"
    ] = "business_rejection"
    message: str
    erp_code: str | None = None
    details: list[str] = Field(default_factory=list)
    opened_at: datetime
    status: ExceptionStatus = "open"
    closed_at: datetime | None = None
    resolved_by: str | None = None
    resolution_comment: str | None = None
    override_document: str | None = None
    attempts: int = 1


class ExceptionResolution(BaseModel):
    """Sent by a supervisor (UI, CLI or API) to act on an open exception."""

    model_config = ConfigDict(extra="forbid")

    exception_id: str = Field(min_length=1, max_length=64)
    action: ResolutionAction
    by: str = Field(default="supervisor", min_length=1, max_length=100)
    comment: str | None = Field(default=None, max_length=500)
    # With `override`: the document the supervisor posted by hand, recorded as the step's result.
    document: str | None = Field(default=None, max_length=100)


class SupervisorAction(BaseModel):
    """Arguments of `release_hold` and `cancel_order`."""

    model_config = ConfigDict(extra="forbid")

    by: str = Field(default="supervisor", min_length=1, max_length=100)
    reason: str | None = Field(default=None, max_length=500)


class StepDecision(BaseModel):
    """Arguments of a `MaintenanceRequest`'s `retry_step`, `skip_step` and `override_step`.

    The action is the signal's; `exception_id` (optional) names the exception acted on. Older
    senders sent these signals without arguments: that still works, as `by="maintenance"`.
    """

    model_config = ConfigDict(extra="forbid")

    exception_id: str | None = Field(default=None, max_length=64)
    by: str = Field(default="maintenance", min_length=1, max_length=100)
    comment: str | None = Field(default=None, max_length=500)
    # With `override_step`: the document posted by hand, recorded as the step's result.
    document: str | None = Field(default=None, max_length=100)
