"""ERP intake: `POST /v1/erp/sap/events` (S/4HANA business events) and `POST /v1/erp/sap/idoc` (LOIPRO)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from plantbridge.gateway.auth import ERP, Caller, require
from plantbridge.gateway.erp_intake import ErpIntake
from plantbridge.gateway.inbox import SAP_EVENT, SAP_IDOC, Intake
from plantbridge.gateway.openapi import INBOX_ID, errors, success
from plantbridge.gateway.openapi_examples import IDOC_EXAMPLE, SAP_EVENT_EXAMPLE
from plantbridge.gateway.routes_plant import receive, respond
from plantbridge.gateway.schemas import ErpOrderResult, IdocAnswer

router = APIRouter(tags=["erp"])

CLOUDEVENT_TYPES = ("application/json", "application/cloudevents+json")
XML_TYPES = ("application/xml", "text/xml")
_CLOUDEVENT_SCHEMA = {"$ref": "#/components/schemas/CloudEvent"}
_IDOC_SCHEMA = {
    "type": "string", "title": "LOIPRO05",
    "description": "A LOIPRO05 IDoc (production order) as XML: plain IDoc-XML (`<LOIPRO05><IDOC>…`) or IDoc-SOAP "
                   "(`urn:sap-com:document:sap:idoc:soap:messages`); segments EDI_DC40, E1AFKOL (order header: AUFNR, "
                   "WERKS, MATNR, GAMNG, GMEIN, dates, E1JSTKL status), E1AFFLL/E1AFVOL (operations) and E1RESBL "
                   "(components), as SAP's LOIPRO05 IDoc type documentation (WE60) defines them.",
}
_ERP_ERRORS = dict(
    e403="The key's role is not `erp`, or it is not bound to the order's plant",
    e503="Temporal is unavailable or overloaded, or the ERP could not be read now (`erp_unavailable`), or the "
         "gateway has no ERP order source: the message is kept in the inbox (the first two are delivered again by "
         "the gateway's re-driver); it may be sent again after `Retry-After` seconds",
)


@router.post(
    "/v1/erp/sap/events", summary="S/4HANA production order business event (CloudEvents, structured JSON)",
    description="A production order event from S/4HANA's event mesh. `Created` and `Changed` (SAP has no other "
                "type) read the order back from the ERP and start its saga, release it, or tell a running saga "
                "the order changed (`order_changed`: it reads the order itself); other events are `ignored`.",
    responses={200: success(ErpOrderResult, "The order's saga started, released, or the event recorded/ignored",
                            INBOX_ID),
               **errors(403, 404, 413, 415, 422, 502, 503, headers=INBOX_ID, **_ERP_ERRORS,
                        e404="The ERP does not know the order",
                        e502="Reading the order from the ERP failed other than transiently (kept as a dead letter)")},
    openapi_extra={"requestBody": {"required": True, "content": {
        media: {"schema": _CLOUDEVENT_SCHEMA, "example": SAP_EVENT_EXAMPLE} for media in CLOUDEVENT_TYPES}}})
async def post_sap_event(request: Request, caller: Caller = Depends(require(ERP))) -> JSONResponse:
    got = await receive(request, caller, SAP_EVENT, CLOUDEVENT_TYPES)
    if isinstance(got, JSONResponse):
        return got
    msg_id, raw = got
    intake: Intake = request.app.state.intake
    return respond(await ErpIntake(intake).sap_event(msg_id, raw, caller), msg_id)


@router.post(
    "/v1/erp/sap/idoc", summary="LOIPRO production order IDoc (XML or IDoc-SOAP XML)",
    description="One or more production orders as a LOIPRO05 IDoc. A released order starts (or releases) its saga.",
    responses={200: success(IdocAnswer, "Each order of the IDoc: started, released, recorded or finished", INBOX_ID),
               **errors(403, 413, 415, 422, 503, headers=INBOX_ID, **_ERP_ERRORS,
                        e422="Not a LOIPRO05 IDoc the gateway can read (`code` `invalid_idoc`)")},
    openapi_extra={"requestBody": {"required": True, "content": {
        media: {"schema": _IDOC_SCHEMA, "example": IDOC_EXAMPLE} for media in XML_TYPES}}})
async def post_sap_idoc(request: Request, caller: Caller = Depends(require(ERP))) -> JSONResponse:
    got = await receive(request, caller, SAP_IDOC, XML_TYPES, limit=request.app.state.deps.idoc_body_limit)
    if isinstance(got, JSONResponse):
        return got
    msg_id, raw = got
    intake: Intake = request.app.state.intake
    return respond(await ErpIntake(intake).idoc(msg_id, raw, caller), msg_id)
