"""`POST /v1/erp/odoo/events/{plant}/{token}`: Odoo's "Send Webhook Notification" (MO confirmed)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from plantbridge.gateway.bodies import BodyTooLarge, read_limited
from plantbridge.gateway.errors import ApiError
from plantbridge.gateway.inbox import Intake, Outcome
from plantbridge.gateway.odoo_intake import ODOO_CHANNEL, WEBHOOK_PATH, OdooIntake, token_ok
from plantbridge.gateway.routes_plant import respond

# Its own tag: authenticated by the token in its URL (Odoo sends no header), not by a bearer key, so the
# schema-driven contract run (tests/gateway/test_openapi_contract.py) leaves it to tests/e2e/test_odoo_order.py.
router = APIRouter(tags=["erp-webhook"])

EXAMPLE = {"_action": "Send Webhook Notification(#12)", "_id": 42, "_model": "mrp.production", "id": 42,
           "name": "WH/MO/00042", "state": "confirmed"}


@router.post(
    WEBHOOK_PATH + "/{plant}/{token}",
    summary="Odoo manufacturing order confirmed (automation rule webhook; the token in the URL authenticates)",
    responses={401: {"description": "unknown plant or wrong token (the answer does not say which)"},
               404: {"description": "Odoo does not know the MO"}},
    openapi_extra={"security": [], "requestBody": {"required": True, "content": {
        "application/json": {"schema": {"type": "object"}, "example": EXAMPLE}}}},
)
async def post_odoo_event(request: Request, plant: str, token: str) -> JSONResponse:
    if not token_ok(request.app.state.deps.odoo_tokens, plant, token):
        raise ApiError(401, "unauthenticated", "unknown webhook")
    intake: Intake = request.app.state.intake
    channel = f"{ODOO_CHANNEL}{plant}"
    try:
        raw = await read_limited(request, request.app.state.deps.body_limit)
    except BodyTooLarge as err:
        msg_id = await intake.inbox.receive(channel, err.prefix, content_type="application/json", status="dead",
                                            reason=err.message)
        return respond(Outcome.of(err), msg_id)
    msg_id = await intake.inbox.receive(channel, raw, content_type=request.headers.get("content-type", ""))
    return respond(await OdooIntake(intake).webhook(msg_id, raw, plant), msg_id)
