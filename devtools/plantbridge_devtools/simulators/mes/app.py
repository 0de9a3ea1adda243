'''The MES stand-in ("LineControl MES", REST API v2) as an ASGI application.

``create_app(db_path, plant="1000", outbound_url=None, outbound_token=None, api_keys=["mes-dev-key"])``
keeps its state in the SQLite file ``db_path``. Every ``/api/v2`` request needs the header
``X-API-Key: <key>`` (name and keys configurable). JSON everywhere; field names are the MES's own
(camelCase), timestamps ISO 8601 with a UTC offset, quantities decimal strings.

Codes and units (the MES's own; plantbridge's plant config maps them)
--------------------------------------------------------------------
- units: ``PCS`` pieces, ``SET``, ``KG``, ``G``, ``M`` metres, ``L`` litres
- resources (work centers): any ``^[A-Z0-9][A-Z0-9-]{0,19}$`` named in a routing, plus the known
  ``L1-ASSY``, ``L1-PACK``, ``L2-MACH``, ``L2-PAINT``, ``L3-TEST`` (e.g. ERP ``ASSY-01`` = MES ``L1-ASSY``)
- scrap codes: ``S-SCRATCH``, ``S-DENT``, ``S-DIM``, ``S-MATL``, ``S-SETUP``, ``S-OTHER``
- downtime codes: ``D-MECH``, ``D-ELEC``, ``D-NOMAT``, ``D-NOOP``, ``D-SETUP``, ``D-QUAL``, ``D-PLAN``
- hold codes: ``H-QUAL``, ``H-MATL``, ``H-ENG``, ``H-CUST``
- work order ``status``: ``DISPATCHED`` → ``IN_PROGRESS`` → ``COMPLETED``; ``ON_HOLD`` (back to the
  previous status on unhold); ``RECALLED`` (final). Step ``status``: ``READY``, ``RUNNING``,
  ``PAUSED``, ``FINISHED`` (``CANCELLED`` after a recall).

Errors: ``{"errorCode": "WO-404", "message": "...", "details": ..., "timestamp": "..."}`` with
``WO-404``/``STEP-404``/``RES-404``/``ACK-404`` (404), ``WO-409`` (order state conflict, e.g. finishing
or holding a recalled order), ``WO-409-DUP`` (order already dispatched with other data), ``STEP-409``
(step state), ``RES-409`` (resource already down / not down) (409), ``WO-422`` (validation, details
``[{"field", "message"}]``), ``AUTH-401``, ``SYS-503`` (with ``Retry-After``).

Work orders
-----------
``POST /api/v2/workorders`` dispatch; 201 with the work order, 200 with the existing one when the
same order is dispatched again with identical data (409 ``WO-409-DUP`` if the data differ; a
recalled order may be dispatched again and gets a new id)::

    {"orderNo": "1004157", "plant": "1000", "material": "FG-100", "materialText": "Gearbox",
     "quantity": "100", "unit": "PCS", "priority": 5, "dueDate": "2026-11-27T14:00:00+01:00",
     "routing": [{"step": "0010", "resource": "L1-ASSY", "description": "assemble",
                  "plannedQty": "100", "setupMin": "15", "runMinPerUnit": "0.5"}],
     "bom": [{"material": "RM-10", "quantity": "200", "unit": "PCS", "step": "0010"}]}

The answer adds ``workOrderId`` (``WO-000001``), ``status``, ``hold``, per step ``status``,
``goodQty``, ``scrapQty``, ``scrap`` (qty per scrap code), ``laborMin``, ``machineMin``,
``setupMinActual``, ``startedAt``, ``finishedAt``; plus ``events`` (ids of events raised) and ``history``.
The step id is echoed in events exactly as dispatched.

- ``GET /api/v2/workorders/{workOrderId}``; ``GET /api/v2/workorders?orderNo=&status=`` →
  ``{"items": [...], "count": n}``
- ``POST /api/v2/workorders/{id}/recall`` ``{"reason"}`` — any status but ``COMPLETED`` (409); repeat is a no-op
- ``POST /api/v2/workorders/{id}/hold`` ``{"reasonCode": "H-QUAL", "text", "source": "INTEGRATION"|"SHOPFLOOR"}``
  — from ``DISPATCHED``/``IN_PROGRESS`` (else 409; repeat is a no-op). Only a ``SHOPFLOOR`` hold
  emits ``quality_hold`` (a hold ordered by the integration is not echoed back).
- ``POST /api/v2/workorders/{id}/unhold`` ``{"text"}`` — 409 unless ``ON_HOLD``

Execution (409 ``WO-409`` unless the order is ``DISPATCHED``/``IN_PROGRESS``):

- ``POST .../{id}/steps/{step}/start`` ``{"operator", "at"}`` — ``READY`` → ``RUNNING`` emits
  ``operation_started``; ``PAUSED`` → ``RUNNING`` resumes silently
- ``POST .../{id}/steps/{step}/pause`` — ``RUNNING`` → ``PAUSED``
- ``POST .../{id}/steps/{step}/report`` — step must be ``RUNNING``; body
  ``{"goodQty": "20", "scrapQty": "1", "scrapCode": "S-SCRATCH", "laborMin": "15", "machineMin": "12",
  "setupMin": "0", "operator": "op-7", "at": "..."}`` (``scrapCode`` required when ``scrapQty`` > 0);
  emits ``operation_confirmed`` with ``final: false``. Answer ``{"workOrder", "eventId"}``.
- ``POST .../{id}/steps/{step}/finish`` — same body (all optional), step ``RUNNING``/``PAUSED`` →
  ``FINISHED``, emits ``operation_confirmed`` with ``final: true`` (the quantities of this last
  report, ``0`` if none); the order becomes ``COMPLETED`` when every step is finished.

Resources and code lists
------------------------
- ``GET /api/v2/resources``, ``/units``, ``/reason-codes`` → ``{"items": [{"code", ...}], "count"}``
- ``GET /api/v2/resources/{res}`` → ``{"resource", "state": "UP"|"DOWN", "downtime"}``
- ``POST /api/v2/resources/{res}/downtime`` ``{"action": "START"|"END", "code": "D-MECH",
  "equipment": "PRESS-01", "workOrderId", "comment", "at"}`` (``code`` required for ``START``) →
  the downtime record ``{"downtimeId": "DT-000001", "startedAt", "endedAt", "durationMin", ...}``.
  It belongs to ``workOrderId`` or else to the order with a running/paused step on the resource;
  then it emits ``downtime_started``/``downtime_ended``, otherwise it is recorded only.
- ``GET /api/v2/resources/{res}/downtimes``
- ``POST /api/v2/resources/{res}/maintenance-requests`` ``{"equipment", "priority": 1..4 (1 very
  high), "text", "workOrderId"}`` → ``{"requestId": "MR-000001", ...}``; emits
  ``maintenance_requested`` when it belongs to an order (as for downtimes).

Acknowledgements (the integration's business answer to an event)
----------------------------------------------------------------
- ``POST /api/v2/acknowledgements`` ``{"transactionRef": "mes1000-000001", "result": "OK"|"NOK",
  "erpDocument": "ProdnOrdConf2 1234/1", "text": "..."}`` → 201 ``{"ackId": "ACK-000001", ...,
  "orderNo", "matched": <transactionRef is one of our events>, "revision": 1}``; a new ack for the
  same ``transactionRef`` replaces it (200, ``revision`` + 1)
- ``GET /api/v2/acknowledgements?transactionRef=&orderNo=`` → ``{"items", "count"}``

Outbound plant events
---------------------
Each event is POSTed to the outbound URL with ``Authorization: Bearer <token>`` in plantbridge's
published wire format (ARCHITECTURE §7), with the MES's local codes: ``event_id`` ``mes{plant}-{seq:06d}``,
``source`` ``mes-{plant}``, ``plant``, ``order`` (= ``orderNo``), ``occurred_at``, ``operation`` (= step),
``work_center`` (= resource, e.g. ``L1-ASSY``), ``yield_qty``/``scrap_qty`` ``{"quantity", "uom": "PCS"}``,
``reason`` (scrap, downtime or hold code), ``final``, ``activities`` ``{"setup_min", "machine_min",
"labor_min"}``, ``personnel``, ``equipment``, ``priority``, ``description``. Types:
``operation_started``, ``operation_confirmed``, ``downtime_started``, ``downtime_ended``,
``quality_hold``, ``maintenance_requested``. Delivery is in order, retried with backoff, from an
outbox table (see ``outbox.py``); the receiver's JSON answer is kept per event.

Admin (no auth, no faults): ``GET /admin/health``, ``GET /admin/state``, ``POST /admin/reset``,
``GET|PUT|DELETE /admin/faults`` (``{"latency_ms", "latency_jitter_ms", "error_503_ratio", "paths",
"seed"}``), ``POST /admin/run`` (script runner, see ``script.py``), ``GET /admin/outbox?status=&order=``,
``POST /admin/outbox/retry`` (rejected → pending), ``GET|PUT /admin/outbound`` ``{"url", "token"}``.
'''

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from plantbridge_devtools.simulators.common.admin import build_admin_router
from plantbridge_devtools.simulators.common.errors import ErrorStyle, SimError, install_errors
from plantbridge_devtools.simulators.common.faults import FaultInjector
from plantbridge_devtools.simulators.common.guard import Guard
from plantbridge_devtools.simulators.common.state import SqliteState
from plantbridge_devtools.simulators.common.util import iso, now
from plantbridge_devtools.simulators.mes import codes as c
from plantbridge_devtools.simulators.mes.core import Mes, public
from plantbridge_devtools.simulators.mes.models import (
    AcknowledgementIn,
    ChangeIn,
    DowntimeIn,
    HoldIn,
    MaintenanceIn,
    RecallIn,
    ReportIn,
    StepActionIn,
    UnholdIn,
    WorkOrderIn,
)
from plantbridge_devtools.simulators.mes.outbox import OUTBOX_SCHEMA, Dispatcher, Outbound, list_outbox
from plantbridge_devtools.simulators.mes.script import ScriptIn, run_script

DEFAULT_API_KEYS = ("mes-dev-key",)


def _render(error: SimError) -> dict[str, Any]:
    body: dict[str, Any] = {"errorCode": error.code, "message": error.message}
    if error.details is not None:
        body["details"] = error.details
    body["timestamp"] = iso(now())
    return body


STYLE = ErrorStyle(
    render=_render, unauthorized="AUTH-401", unavailable="SYS-503", validation="WO-422", not_found="API-404",
    method_not_allowed="API-405",
)


class OutboundIn(BaseModel):
    url: str | None = None
    token: str | None = None


def _items(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"items": items, "count": len(items)}


def build_api(mes: Mes) -> APIRouter:
    api = APIRouter(prefix="/api/v2", tags=["mes"])

    @api.post("/workorders", status_code=201)
    async def dispatch(body: WorkOrderIn) -> JSONResponse:
        wo, created = mes.dispatch(body)
        return JSONResponse(public(wo), status_code=201 if created else 200)

    @api.get("/workorders")
    async def list_work_orders(orderNo: str | None = None, status: str | None = None) -> dict[str, Any]:
        wos = mes.find_by_order(orderNo) if orderNo else mes.state.all("workorder")
        return _items([public(w) for w in wos if status is None or w["status"] == status])

    @api.get("/workorders/{wo_id}")
    async def get_work_order(wo_id: str) -> dict[str, Any]:
        return public(mes.work_order(wo_id))

    @api.post("/workorders/{wo_id}/change")
    async def change(wo_id: str, body: ChangeIn) -> dict[str, Any]:
        return public(mes.change(wo_id, body))

    @api.post("/workorders/{wo_id}/recall")
    async def recall(wo_id: str, body: RecallIn | None = None) -> dict[str, Any]:
        return public(mes.recall(wo_id, body.reason if body else ""))

    @api.post("/workorders/{wo_id}/hold")
    async def hold(wo_id: str, body: HoldIn | None = None) -> dict[str, Any]:
        return public(mes.hold(wo_id, body or HoldIn()))

    @api.post("/workorders/{wo_id}/unhold")
    async def unhold(wo_id: str, body: UnholdIn | None = None) -> dict[str, Any]:
        return public(mes.unhold(wo_id, body.text if body else ""))

    @api.post("/workorders/{wo_id}/steps/{step}/start")
    async def start(wo_id: str, step: str, body: StepActionIn | None = None) -> dict[str, Any]:
        return public(mes.start_step(wo_id, step, body.at if body else None))

    @api.post("/workorders/{wo_id}/steps/{step}/pause")
    async def pause(wo_id: str, step: str, body: StepActionIn | None = None) -> dict[str, Any]:
        return public(mes.pause_step(wo_id, step, body.at if body else None))

    @api.post("/workorders/{wo_id}/steps/{step}/report")
    async def report(wo_id: str, step: str, body: ReportIn) -> dict[str, Any]:
        wo, event = mes.report(wo_id, step, body)
        return {"workOrder": public(wo), "eventId": event["event_id"]}

    @api.post("/workorders/{wo_id}/steps/{step}/finish")
    async def finish(wo_id: str, step: str, body: ReportIn | None = None) -> dict[str, Any]:
        wo, event = mes.finish_step(wo_id, step, body or ReportIn())
        return {"workOrder": public(wo), "eventId": event["event_id"]}

    @api.get("/resources")
    async def list_resources() -> dict[str, Any]:
        known = set(c.DEFAULT_RESOURCES) | {r["resource"] for r in mes.state.all("resource")}
        return _items([{"code": r} for r in sorted(known)])

    @api.get("/units")
    async def list_units() -> dict[str, Any]:
        return _items([{"code": u, "text": t} for u, t in c.UNITS.items()])

    @api.get("/reason-codes")
    async def list_reason_codes() -> dict[str, Any]:
        groups = (("scrap", c.SCRAP_CODES), ("downtime", c.DOWNTIME_CODES), ("hold", c.HOLD_CODES))
        return _items([{"code": k, "text": t, "kind": kind} for kind, codes in groups for k, t in codes.items()])

    @api.get("/resources/{resource}")
    async def get_resource(resource: str) -> dict[str, Any]:
        return mes.resource(resource)

    @api.post("/resources/{resource}/downtime")
    async def downtime(resource: str, body: DowntimeIn) -> dict[str, Any]:
        return mes.downtime(resource, body)

    @api.get("/resources/{resource}/downtimes")
    async def downtimes(resource: str) -> dict[str, Any]:
        mes.resource(resource)
        return _items(mes.state.by_ref("downtime", resource))

    @api.post("/resources/{resource}/maintenance-requests", status_code=201)
    async def maintenance(resource: str, body: MaintenanceIn) -> dict[str, Any]:
        return mes.maintenance(resource, body)

    @api.post("/acknowledgements", status_code=201)
    async def acknowledge(body: AcknowledgementIn) -> JSONResponse:
        ack, created = mes.acknowledge(body)
        return JSONResponse(ack, status_code=201 if created else 200)

    @api.get("/acknowledgements")
    async def acknowledgements(transactionRef: str | None = None, orderNo: str | None = None) -> dict[str, Any]:
        return _items(mes.acknowledgements(transactionRef, orderNo))

    return api


def build_mes_admin(mes: Mes, outbound: Outbound) -> APIRouter:
    admin = APIRouter(prefix="/admin", tags=["admin"])

    @admin.post("/run")
    async def run(body: ScriptIn) -> dict[str, Any]:
        return run_script(mes, body)

    @admin.get("/outbox")
    async def outbox(status: str | None = None, order: str | None = None) -> dict[str, Any]:
        return _items(list_outbox(mes.state, status, order))

    @admin.post("/outbox/retry")
    async def retry() -> dict[str, Any]:
        with mes.state.lock:
            count = mes.state.db.execute("UPDATE outbox SET status='pending' WHERE status='rejected'").rowcount
        mes.dispatcher.notify()
        return {"requeued": count}

    @admin.get("/outbound")
    async def get_outbound() -> dict[str, Any]:
        return outbound.to_json()

    @admin.put("/outbound")
    async def put_outbound(body: OutboundIn) -> dict[str, Any]:
        outbound.url, outbound.token = body.url, body.token
        mes.dispatcher.notify()
        return outbound.to_json()

    return admin


def create_app(
    db_path: str,
    *,
    plant: str = "1000",
    outbound_url: str | None = None,
    outbound_token: str | None = None,
    api_keys: Sequence[str] = DEFAULT_API_KEYS,
    api_key_header: str = "X-API-Key",
    retry_initial_s: float = 0.2,
    retry_max_s: float = 5.0,
) -> FastAPI:
    state = SqliteState(db_path, extra_schema=OUTBOX_SCHEMA, extra_tables=("outbox",))
    outbound = Outbound(outbound_url, outbound_token)
    dispatcher = Dispatcher(state, outbound, retry_initial_s=retry_initial_s, retry_max_s=retry_max_s)
    mes = Mes(state, dispatcher, plant=plant)
    faults = FaultInjector()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        dispatcher.start()
        yield
        await dispatcher.stop()
        state.close()

    app = FastAPI(title="LineControl MES simulator", version="2", lifespan=lifespan)
    app.state.mes = mes
    app.state.faults = faults
    install_errors(app, STYLE)
    app.include_router(build_api(mes))
    app.include_router(build_mes_admin(mes, outbound))
    app.include_router(
        build_admin_router(
            system="mes", state=state, faults=faults,
            extra_state=lambda: {"outbox": list_outbox(state), "outbound": outbound.to_json()},
        )
    )
    app.add_middleware(Guard, api_keys=api_keys, header=api_key_header, faults=faults, style=STYLE)
    return app
