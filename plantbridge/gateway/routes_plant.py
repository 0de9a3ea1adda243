"""`POST /v1/plant/events`: plant events (one, or a batch) to the order sagas."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from plantbridge.gateway.auth import PLANT, Caller, require
from plantbridge.gateway.bodies import BodyTooLarge, read_limited
from plantbridge.gateway.inbox import PLANT_EVENT, Intake, Outcome

router = APIRouter(tags=["plant"])


async def receive(request: Request, caller: Caller, channel: str) -> tuple[int, bytes] | JSONResponse:
    """Read the body (within the limit) and store it in the inbox before anything else."""
    intake: Intake = request.app.state.intake
    content_type = request.headers.get("content-type", "")
    try:
        raw = await read_limited(request, request.app.state.deps.body_limit)
    except BodyTooLarge as err:
        msg_id = await intake.inbox.receive(channel, err.prefix, content_type=content_type, key_id=caller.key_id,
                                            status="dead", reason=err.message)
        return respond(Outcome.of(err), msg_id)
    msg_id = await intake.inbox.receive(channel, raw, content_type=content_type, key_id=caller.key_id)
    return msg_id, raw


def respond(out: Outcome, msg_id: int) -> JSONResponse:
    return JSONResponse(out.body, status_code=out.http_status, headers={"X-Inbox-Id": str(msg_id), **out.headers})


@router.post(
    "/v1/plant/events",
    summary="Send a plant event (or a batch) to its order's saga",
    responses={200: {"description": "decided (accepted, rejected or duplicate); for a batch, `{results: [...]}`"},
               202: {"description": "accepted, ERP outcome pending (or waiting for the order's release)"}},
    openapi_extra={"x-plantbridge-body": "plant_events"},
)
async def post_plant_events(request: Request, caller: Caller = Depends(require(PLANT))) -> JSONResponse:
    got = await receive(request, caller, PLANT_EVENT)
    if isinstance(got, JSONResponse):
        return got
    msg_id, raw = got
    intake: Intake = request.app.state.intake
    return respond(await intake.plant_message(msg_id, raw, caller), msg_id)
