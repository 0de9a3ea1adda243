"""The gateway's answers as named schemas (the OpenAPI components a generated client gets as types).

The handlers build plain dicts; these models describe them, and `/openapi.json` refers to them. The
contract test (tests/gateway/test_openapi_contract.py) checks every answer against them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from plantbridge.canonical.ack import Acknowledgement, AckStatus, ErpOutcome
from plantbridge.canonical.states import OrderState

# What the gateway accepts in paths and queries: exactly what the handlers enforce (422 otherwise).
PLANT_PATTERN = r"^[0-9A-Za-z]{1,4}$"
ORDER_PATTERN = r"^[0-9A-Za-z]{1,12}$"
EXCEPTION_ID_PATTERN = r"^[0-9A-Za-z][0-9A-Za-z_.:-]{0,63}$"
InboxStatus = Literal["received", "processed", "waiting", "deferred", "dead"]


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FieldError(_Answer):
    loc: list[str | int] = Field(description="Where: `path`/`query`/`body` and the field names or list indexes")
    message: str


class ErrorDetail(_Answer):
    status: int = Field(description="The HTTP status, repeated")
    code: str = Field(description="Stable machine-readable code, e.g. `validation_error`, `forbidden_plant`, "
                                  "`order_not_found`, `body_too_large`, `temporal_unavailable`")
    message: str = Field(description="What is wrong, for a person")
    fields: list[FieldError] = Field(default_factory=list, description="One entry per invalid field (422)")


class ErrorBody(_Answer):
    """Every answer other than success."""

    error: ErrorDetail


class Health(_Answer):
    status: Literal["ok"]


class Readiness(_Answer):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = Field(description="Per dependency (`temporal`, `store`): `ok` or why it failed")


class BatchResult(_Answer):
    """One event of a batch: its own HTTP status and either its acknowledgement or its error."""

    http_status: int
    event_id: str | None = None
    status: AckStatus | None = None
    order_state: OrderState | None = None
    erp: ErpOutcome | None = None
    reason: str | None = None
    error: ErrorDetail | None = None


class BatchAnswer(_Answer):
    results: list[BatchResult]


class PlantEventAnswer(RootModel[Acknowledgement | BatchAnswer]):
    """One event's acknowledgement, or a batch's results."""


class ErpOrderResult(_Answer):
    order: str
    plant: str | None = None
    workflow_id: str | None = None
    status: Literal["started", "released", "changed", "recorded", "finished", "ignored"] = Field(
        description="`started`/`released`: the saga runs (a running saga also hears `order_changed`); "
                    "`changed`: a running saga heard that the order is no longer released; `recorded`: not "
                    "released yet; `finished`: the saga "
                    "ended; `ignored`: an event that does not change the saga")
    delivered_waiting: int | None = Field(default=None, description="plant events that waited and were delivered")
    reason: str | None = None


class IdocAnswer(_Answer):
    orders: list[ErpOrderResult]


class OrderRow(_Answer):
    workflow_id: str
    plant: str | None
    order: str | None
    state: str | None
    open_exceptions: int
    material: str | None
    status: str | None = Field(description="Temporal's execution status, e.g. `RUNNING`, `COMPLETED`")
    started_at: str | None


class OrderList(_Answer):
    orders: list[OrderRow]


class OrderView(_Answer):
    workflow_id: str
    plant: str
    order: str
    state: OrderState
    on_hold: bool
    open_exceptions: int
    summary: dict[str, Any] = Field(description="The saga's `summary` query (SagaState as JSON)")


class OpenException(_Answer):
    id: str
    message: str
    code: str | None
    system: str | None
    step: str | None
    category: str | None
    status: str
    attempts: int
    event_id: str | None
    opened_at: str
    age_s: float


class ExceptionRow(OrderRow):
    exceptions: list[OpenException]


class ExceptionList(_Answer):
    orders: list[ExceptionRow]


class ResolveAnswer(_Answer):
    workflow_id: str
    exception_id: str
    action: Literal["retry", "skip", "override"]
    by: str
    status: Literal["sent"]


class LeverAnswer(_Answer):
    workflow_id: str
    by: str
    status: Literal["sent"]


class InboxRow(_Answer):
    id: int
    parent_id: int | None
    received_at: str
    channel: str
    status: InboxStatus
    reason: str | None
    plant: str | None
    order: str | None
    event_id: str | None
    key_id: str | None
    content_type: str | None
    attempts: int
    body: str = Field(description="The raw body as received (first 4000 characters)")
    answer: Any = Field(description="What the gateway answered: `{http_status, body}`")


class InboxList(_Answer):
    messages: list[InboxRow]


class TelemetryAnswer(_Answer):
    """What `POST /v1/plant/telemetry` archived."""

    plant: str
    received: int = Field(description="Rollups in the batch")
    stored: int = Field(description="Rollups newly written to the archive")
    duplicate: int = Field(description="Rollups the archive already held (same `machine_id@bucket_start`), not "
                                       "stored again")
    files: list[str] = Field(description="Parquet files written, relative to the plant's `telemetry/` directory")


class SchemaEntry(_Answer):
    name: str = Field(description="The contract, e.g. `plant-event`, `plant-event.quality_result`, `odoo-webhook`")
    version: int = Field(description="The contract's version (independent of the URL's `/v1/`)")
    title: str
    direction: Literal["inbound", "outbound"] = Field(
        description="`inbound`: the gateway reads it (a version only widens what it accepts); `outbound`: the "
                    "gateway writes it (a version only adds optional fields)")
    endpoint: str = Field(description="Where the message travels")
    href: str = Field(description="`GET` it here")
    deprecated: bool
    sunset: str | None = Field(description="The date after which a deprecated version may be refused")


class SchemaIndex(_Answer):
    schemas: list[SchemaEntry]


class SchemaVersions(_Answer):
    name: str
    versions: list[SchemaEntry]


class DeprecationEntry(_Answer):
    id: str
    applies_to: Literal["endpoint", "api-key", "contract", "temporal-signal"]
    target: str = Field(description="What is deprecated")
    since: str = Field(description="ISO date: deprecated since (the `Deprecation` header)")
    sunset: str = Field(description="ISO date: may stop working after it (the `Sunset` header)")
    instead: str = Field(description="What to use instead")


class DeprecationList(_Answer):
    deprecations: list[DeprecationEntry]
