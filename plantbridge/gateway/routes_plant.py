"""`POST /v1/plant/events`: plant events (one, or a batch) to the order sagas."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from plantbridge.canonical.ack import Acknowledgement
from plantbridge.gateway.auth import PLANT, Caller, require
from plantbridge.gateway.bodies import BodyTooLarge, read_limited
from plantbridge.gateway.errors import ApiError, retry_after
from plantbridge.gateway.inbox import PLANT_EVENT, Intake, Outcome
from plantbridge.gateway.openapi import INBOX_ID, errors, success
from plantbridge.gateway.plant_intake import receive_plant_message
from plantbridge.gateway.responses import JsonResponse
from plantbridge.gateway.schemas import PlantEventAnswer

router = APIRouter(tags=["plant"])


JSON_TYPES = ("application/json",)


def unsupported_media_type(content_type: str, accept: tuple[str, ...]) -> ApiError | None:
    """415 when the request names a media type the operation does not document (none at all is read as the first)."""
    media = content_type.split(";", 1)[0].strip().lower()
    if not media or media in accept:
        return None
    msg = f"Content-Type {media[:60]!r} is not accepted here; send {' or '.join(accept)}"
    return ApiError(415, "unsupported_media_type", msg, [{"loc": ["header", "content-type"], "message": msg}])


async def read_body(request: Request, caller: Caller, channel: str,
                    accept: tuple[str, ...] = JSON_TYPES, limit: int | None = None) -> bytes | JSONResponse:
    """The body (within the limit, of an accepted type), or the answer to one that is not (stored, dead)."""
    intake: Intake = request.app.state.intake
    content_type = request.headers.get("content-type", "")
    try:
        raw = await read_limited(request, limit or request.app.state.deps.body_limit)
    except BodyTooLarge as err:
        msg_id = await intake.inbox.receive(channel, err.prefix, content_type=content_type, key_id=caller.key_id,
                                            status="dead", reason=err.message)
        return respond(Outcome.of(err), msg_id)
    wrong_type = unsupported_media_type(content_type, accept)
    if wrong_type is not None:
        msg_id = await intake.inbox.receive(channel, raw, content_type=content_type, key_id=caller.key_id)
        return respond(await intake.dead(msg_id, wrong_type), msg_id)
    return raw


async def receive(request: Request, caller: Caller, channel: str,
                  accept: tuple[str, ...] = JSON_TYPES, limit: int | None = None) -> tuple[int, bytes] | JSONResponse:
    """Read the body (within the limit) and store it in the inbox before anything else."""
    raw = await read_body(request, caller, channel, accept, limit)
    if isinstance(raw, JSONResponse):
        return raw
    intake: Intake = request.app.state.intake
    msg_id = await intake.inbox.receive(channel, raw, content_type=request.headers.get("content-type", ""),
                                        key_id=caller.key_id)
    return msg_id, raw


def respond(out: Outcome, msg_id: int) -> JSONResponse:
    headers = {"X-Inbox-Id": str(msg_id)}
    if out.http_status in (429, 503):  # transient: the same message may be sent again (it is kept)
        headers.update(retry_after())
    headers.update(out.headers)  # the intake's own Retry-After (1 s for a per-workflow limit) wins
    return JsonResponse(out.body, status_code=out.http_status, headers=headers)


@router.post(
    "/v1/plant/events",
    summary="Send a plant event (or a batch) to its order's saga",
    description="One plant event, or `{\"events\": [...]}` (1 to 500, answered per event, in order). Every "
                "message is stored in the gateway's inbox first (`X-Inbox-Id`); malformed or refused ones are "
                "kept as dead letters, and an event for an order not released yet waits there (202).",
    responses={
        200: success(PlantEventAnswer, "Decided (accepted, rejected or duplicate); for a batch, `{results: [...]}`, "
                     "each with its own `http_status`", INBOX_ID),
        202: success(Acknowledgement, "Accepted, ERP outcome pending (or waiting for the order's release)", INBOX_ID),
        **errors(403, 409, 413, 415, 422, 503, headers=INBOX_ID,
                 e409="`conflict`: the event id was received before with other content; `fields` names the "
                      "differing fields; kept as a dead letter for a person",
                 e422="The event does not match the schema, or `occurred_at` lies further in the future than the "
                      "allowed clock skew: `fields` names each invalid field",
                 e403="The key's role is not `plant-system`/`edge`, or it is not bound to the event's plant",
                 e503="Temporal is unavailable or overloaded, or the saga is busy: the event is kept in the inbox "
                      "(dead, for replay); send it again after `Retry-After` seconds"),
    },
    openapi_extra={"x-plantbridge-body": "plant_events"},
)
async def post_plant_events(request: Request, caller: Caller = Depends(require(PLANT))) -> JSONResponse:
    raw = await read_body(request, caller, PLANT_EVENT)
    if isinstance(raw, JSONResponse):
        return raw
    msg_id, out = await receive_plant_message(request.app.state.intake, raw, request.headers.get("content-type", ""),
                                              caller)
    return respond(out, msg_id)
