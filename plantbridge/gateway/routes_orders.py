"""The supervisor API: orders, exceptions and the levers (resolve, release hold, cancel), the inbox."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from plantbridge.canonical.exceptions import ExceptionResolution, SupervisorAction
from plantbridge.canonical.fields import normalize_order_number
from plantbridge.canonical.order import workflow_id
from plantbridge.canonical.saga import SagaState
from plantbridge.canonical.states import END_STATES, OrderState
from plantbridge.client import (
    RPC_TIMEOUT,
    WORKFLOW_TYPE,
    bounded,
    cancel_order,
    order_summary,
    release_hold,
    resolve_exception,
)
from plantbridge.gateway.auth import SUPERVISOR, Caller, check_plant, require
from plantbridge.gateway.bodies import parse_json, read_limited, text_of
from plantbridge.gateway.errors import ApiError, invalid
from plantbridge.gateway.openapi import errors
from plantbridge.gateway.openapi_examples import RESOLVE_EXAMPLES
from plantbridge.gateway.routes_plant import JSON_TYPES, unsupported_media_type
from plantbridge.gateway.schemas import (
    EXCEPTION_ID_PATTERN,
    ORDER_PATTERN,
    PLANT_PATTERN,
    ExceptionList,
    InboxList,
    InboxStatus,
    LeverAnswer,
    OrderList,
    OrderView,
    ResolveAnswer,
)
from plantbridge.store.audit import AuditTrail
from plantbridge.store.inbox import Inbox
from plantbridge.workflows import search_attributes as sa

router = APIRouter(tags=["supervisor"])
supervisor = Depends(require(SUPERVISOR))
_PLANT = re.compile(PLANT_PATTERN)

# Path and query parameters as the schema states them; FastAPI refuses anything else with 422.
PlantPath = Annotated[str, Path(pattern=PLANT_PATTERN, min_length=1, max_length=4,
                                description="Plant (WERKS), e.g. `1000`",
                                openapi_examples={"plant": {"value": "1000"}})]
OrderPath = Annotated[str, Path(pattern=ORDER_PATTERN, min_length=1, max_length=12,
                 description="Order number (AUFNR), with or without SAP's leading zeros, e.g. `1004157`",
                 openapi_examples={"order": {"value": "1004157"}})]
ExceptionIdPath = Annotated[str, Path(pattern=EXCEPTION_ID_PATTERN, min_length=1, max_length=64,
                       description="The exception's id as the order's summary lists it, e.g. `EXC-1`",
                       openapi_examples={"exception": {"value": "EXC-1"}})]
PlantQuery = Annotated[str | None, Query(pattern=PLANT_PATTERN, min_length=1, max_length=4,
                   description="Only this plant (the key must be bound to it)")]


class ResolveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["retry", "skip", "override"]
    comment: str | None = Field(default=None, max_length=500)
    document: str | None = Field(default=None, max_length=100)


class LeverBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=500)


def _plant(plant: str) -> str:
    if not _PLANT.fullmatch(plant):
        msg = "plant must be 1 to 4 letters or digits"
        raise ApiError(422, "validation_error", msg, [{"loc": ["path", "plant"], "message": msg}])
    return plant


def _order(order: str) -> str:
    try:
        return normalize_order_number(order)
    except ValueError as err:
        raise ApiError(422, "validation_error", str(err), [{"loc": ["path", "order"], "message": str(err)}]) from None


def _target(caller: Caller, plant: str, order: str) -> tuple[str, str]:
    plant, order = _plant(plant), _order(order)
    check_plant(caller, plant)
    return plant, order


async def _summary(client: Client, plant: str, order: str) -> SagaState:
    try:
        return await bounded(order_summary(client, plant, order, timeout=RPC_TIMEOUT), f"summary of order {order}")
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise ApiError(404, "order_not_found", f"no saga for order {order} of plant {plant}") from None
        raise


def _plants_clause(caller: Caller, plant: str | None) -> str:
    if plant is not None:
        check_plant(caller, _plant(plant))
        return f"Plant = '{plant}'"
    if caller.all_plants:
        return ""
    return "Plant IN (" + ", ".join(f"'{p}'" for p in caller.plants if _PLANT.fullmatch(p)) + ")"


async def _visible(client: Client, query: str, limit: int = 1000) -> list[dict[str, Any]]:
    return await bounded(_list(client, query, limit), "the order list")


async def _list(client: Client, query: str, limit: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    full = f"WorkflowType = '{WORKFLOW_TYPE}'" + (f" AND {query}" if query else "")
    async for wf in client.list_workflows(full, limit=limit, rpc_timeout=RPC_TIMEOUT):
        attrs = wf.typed_search_attributes
        out.append({
            "workflow_id": wf.id, "plant": attrs.get(sa.PLANT), "order": attrs.get(sa.ORDER_NUMBER),
            "state": attrs.get(sa.ORDER_STATE), "open_exceptions": attrs.get(sa.OPEN_EXCEPTIONS) or 0,
            "material": attrs.get(sa.MATERIAL), "status": wf.status.name if wf.status else None,
            "started_at": wf.start_time.isoformat() if wf.start_time else None,
        })
    return out


async def _body(request: Request, model: type[BaseModel], optional: bool = False) -> Any:
    raw = await read_limited(request, request.app.state.deps.body_limit)
    wrong_type = unsupported_media_type(request.headers.get("content-type", ""), JSON_TYPES)
    if wrong_type is not None and (raw.strip() or not optional):
        raise wrong_type
    if optional and not raw.strip():
        return model.model_validate({})
    data = parse_json(raw)
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise invalid(err) from None


async def _audit(request: Request, caller: Caller, plant: str, order: str, action: str, **detail: Any) -> None:
    await AuditTrail(request.app.state.deps.db).record(
        workflow_id=workflow_id(plant, order), plant=plant, order=order, actor=caller.name, action=action,
        detail={"key_id": caller.key_id, "via": "api", **detail})


def _json_body(ref: str, required: bool, examples: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": required, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{ref}"},
        "examples": {k: {"summary": k, "value": v} for k, v in examples.items()}}}}}


_LEVER_ERRORS = (404, 409, 413, 415, 422, 503)
_NO_ORDER = "No saga runs for this order (`order_not_found`)"


@router.get("/v1/orders/{plant}/{order}", summary="An order's state and summary (the saga's `summary` query)",
            response_model=OrderView, responses=errors(404, 422, 503, e404=_NO_ORDER))
async def get_order(request: Request, plant: PlantPath, order: OrderPath,
                    caller: Caller = supervisor) -> dict[str, Any]:
    plant, order = _target(caller, plant, order)
    s = await _summary(request.app.state.deps.client, plant, order)
    return {"workflow_id": workflow_id(plant, order), "plant": plant, "order": order, "state": s.state.value,
            "on_hold": s.hold is not None, "open_exceptions": len(s.open_exceptions),
            "summary": s.model_dump(mode="json", exclude={"seen_event_ids", "pending_audit"})}


@router.get("/v1/orders", summary="Orders by plant and state (Temporal visibility)",
            description="Without `plant`: the orders of every plant the key is bound to.",
            response_model=OrderList, responses=errors(422, 503))
async def list_orders(request: Request, plant: PlantQuery = None,
                      state: OrderState | None = Query(None, description="Only orders in this state"),
                      caller: Caller = supervisor) -> dict[str, Any]:
    clauses = [c for c in (_plants_clause(caller, plant), f"OrderState = '{state.value}'" if state else "") if c]
    return {"orders": await _visible(request.app.state.deps.client, " AND ".join(clauses))}


@router.get("/v1/exceptions", summary="Orders with open exceptions, each exception with its message, code and age",
            response_model=ExceptionList, responses=errors(422, 503))
async def list_exceptions(request: Request, plant: PlantQuery = None,
                          caller: Caller = supervisor) -> dict[str, Any]:
    clauses = [c for c in (_plants_clause(caller, plant), "OpenExceptions > 0") if c]
    client: Client = request.app.state.deps.client
    now = datetime.now(UTC)
    out = []
    for wf in await _visible(client, " AND ".join(clauses)):
        try:
            s = await bounded(order_summary(client, wf["plant"], wf["order"], timeout=RPC_TIMEOUT),
                              f"summary of order {wf['order']}")
        except RPCError:
            continue
        if not s.open_exceptions:
            continue
        out.append({**wf, "state": s.state.value, "exceptions": [
            {"id": e.id, "message": e.message, "code": e.erp_code, "system": e.system, "step": e.step_kind,
             "category": e.category, "status": e.status, "attempts": e.attempts, "event_id": e.event_id,
             "opened_at": e.opened_at.isoformat(), "age_s": round((now - e.opened_at).total_seconds(), 1)}
            for e in s.open_exceptions]})
    return {"orders": out}


@router.post("/v1/orders/{plant}/{order}/exceptions/{exception_id}/resolve", status_code=202,
             summary="Resolve an open exception: retry, skip, or override with a document",
             response_model=ResolveAnswer,
             responses=errors(*_LEVER_ERRORS, e404=f"{_NO_ORDER}, or the order has no such exception "
                                                   "(`exception_not_found`)",
                              e409="The exception is not open any more (`exception_not_open`)"),
             openapi_extra=_json_body("ResolveBody", True, RESOLVE_EXAMPLES))
async def post_resolve(request: Request, plant: PlantPath, order: OrderPath,
                       exception_id: ExceptionIdPath, caller: Caller = supervisor) -> dict[str, Any]:
    plant, order = _target(caller, plant, order)
    body: ResolveBody = await _body(request, ResolveBody)
    client: Client = request.app.state.deps.client
    s = await _summary(client, plant, order)
    exc = next((e for e in s.exceptions if e.id == exception_id), None)
    if exc is None:
        raise ApiError(404, "exception_not_found", f"order {order} has no exception {exception_id}")
    if exc.status != "open":
        raise ApiError(409, "exception_not_open", f"exception {exception_id} is {exc.status}, not open")
    resolution = ExceptionResolution(exception_id=exception_id, action=body.action, by=caller.name,
                                     comment=body.comment, document=body.document)
    await bounded(resolve_exception(client, plant, order, resolution, timeout=RPC_TIMEOUT), "resolve_exception")
    await _audit(request, caller, plant, order, "api.resolve_exception", exception_id=exception_id,
                 resolution=body.action, comment=body.comment, document=body.document)
    return {"workflow_id": workflow_id(plant, order), "exception_id": exception_id, "action": body.action,
            "by": caller.name, "status": "sent"}


async def _lever(request: Request, caller: Caller, plant: str, order: str, action: str,
                 refuse: Callable[[SagaState, str], tuple[str, str] | None],
                 send: Callable[[Client, str, str, SupervisorAction], Awaitable[None]]) -> dict[str, Any]:
    """A supervisor lever: check the order's state, send the signal with the caller's name, audit it."""
    plant, order = _target(caller, plant, order)
    body: LeverBody = await _body(request, LeverBody, optional=True)
    client: Client = request.app.state.deps.client
    before = await _summary(client, plant, order)
    problem = refuse(before, order)
    if problem is not None:
        raise ApiError(409, *problem)
    await bounded(send(client, plant, order, SupervisorAction(by=caller.name, reason=body.reason)), action)
    if (uns := request.app.state.deps.uns) is not None:  # the state it moves to, to the UNS
        uns.after_lever(client, plant, order, before.state, action)
    await _audit(request, caller, plant, order, f"api.{action}", reason=body.reason)
    return {"workflow_id": workflow_id(plant, order), "by": caller.name, "status": "sent"}


@router.post("/v1/orders/{plant}/{order}/release-hold", status_code=202, summary="Release the order's quality hold",
             description="The body is optional.", response_model=LeverAnswer,
             responses=errors(*_LEVER_ERRORS, e404=_NO_ORDER, e409="The order is not on quality hold (`not_on_hold`), "
                              "or it is ended or being cancelled (`order_ended`)"),
             openapi_extra=_json_body("LeverBody", False, {"reason": {"reason": "re-inspected, parts OK"}}))
async def post_release_hold(request: Request, plant: PlantPath, order: OrderPath,
                            caller: Caller = supervisor) -> dict[str, Any]:
    def refuse(s: SagaState, order: str) -> tuple[str, str] | None:
        # A cancelled order keeps its hold record; releasing it would move the order out of `cancelled`,
        # which the saga's state table refuses (its workflow task would fail on every retry).
        if s.state in END_STATES or s.cancel_requested_by is not None:
            return "order_ended", f"order {order} is {s.state.value} (or being cancelled); its hold stays as it is"
        return None if s.hold is not None else ("not_on_hold", f"order {order} is {s.state.value}, not on quality hold")

    return await _lever(request, caller, plant, order, "release_hold", refuse, release_hold)


@router.post("/v1/orders/{plant}/{order}/cancel", status_code=202, summary="Cancel the order (compensations run)",
             description="The body is optional.", response_model=LeverAnswer,
             responses=errors(*_LEVER_ERRORS, e404=_NO_ORDER,
                              e409="The order is posted or cancelled already (`order_ended`)"),
             openapi_extra=_json_body("LeverBody", False, {"reason": {"reason": "customer cancelled"}}))
async def post_cancel(request: Request, plant: PlantPath, order: OrderPath,
                      caller: Caller = supervisor) -> dict[str, Any]:
    def refuse(s: SagaState, order: str) -> tuple[str, str] | None:
        if s.state in END_STATES:
            return "order_ended", f"order {order} is {s.state.value}; it cannot be cancelled"
        return None

    return await _lever(request, caller, plant, order, "cancel_order", refuse, cancel_order)


@router.get("/v1/inbox", summary="Inbound messages by status: dead letters, waiting events",
            description="Newest first; a key bound to some plants sees only their messages.",
            response_model=InboxList, responses=errors(422))
async def get_inbox(request: Request, status: InboxStatus | None = Query(None, description="Only this status"),
                    limit: int = Query(200, ge=1, le=1000, description="At most this many messages"),
                    caller: Caller = supervisor) -> dict[str, Any]:
    inbox: Inbox = request.app.state.intake.inbox
    rows = await inbox.messages(status=status, plants=None if caller.all_plants else caller.plants, limit=limit)
    return {"messages": [
        {"id": r.id, "parent_id": r.parent_id, "received_at": r.received_at.isoformat(), "channel": r.channel,
         "status": r.status, "reason": r.reason, "plant": r.plant, "order": r.order_number, "event_id": r.event_id,
         "key_id": r.key_id, "content_type": r.content_type, "attempts": r.attempts, "body": text_of(r.body),
         "answer": r.answer} for r in rows]}
