"""ERP intake: `POST /v1/erp/sap/events` (S/4HANA business events) and `POST /v1/erp/sap/idoc` (LOIPRO)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from plantbridge.gateway.auth import ERP, Caller, require
from plantbridge.gateway.erp_intake import ErpIntake
from plantbridge.gateway.inbox import SAP_EVENT, SAP_IDOC, Intake
from plantbridge.gateway.openapi_examples import IDOC_EXAMPLE, SAP_EVENT_EXAMPLE, json_body
from plantbridge.gateway.routes_plant import receive, respond

router = APIRouter(tags=["erp"])


@router.post("/v1/erp/sap/events", summary="S/4HANA production order business event (CloudEvents, structured JSON)",
             openapi_extra=json_body(SAP_EVENT_EXAMPLE))
async def post_sap_event(request: Request, caller: Caller = Depends(require(ERP))) -> JSONResponse:
    got = await receive(request, caller, SAP_EVENT)
    if isinstance(got, JSONResponse):
        return got
    msg_id, raw = got
    intake: Intake = request.app.state.intake
    return respond(await ErpIntake(intake).sap_event(msg_id, raw, caller), msg_id)


@router.post("/v1/erp/sap/idoc", summary="LOIPRO production order IDoc (XML or IDoc-SOAP XML)",
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/xml": {"schema": {"type": "string"}, "example": IDOC_EXAMPLE}}}})
async def post_sap_idoc(request: Request, caller: Caller = Depends(require(ERP))) -> JSONResponse:
    got = await receive(request, caller, SAP_IDOC)
    if isinstance(got, JSONResponse):
        return got
    msg_id, raw = got
    intake: Intake = request.app.state.intake
    return respond(await ErpIntake(intake).idoc(msg_id, raw, caller), msg_id)
