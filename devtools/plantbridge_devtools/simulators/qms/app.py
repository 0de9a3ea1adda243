'''The QMS stand-in ("QualityHub QMS", REST v1) as an ASGI application.

``create_app(db_path, api_keys=["qms-dev-key"], api_key_header="X-API-Key")`` keeps its state in the
SQLite file ``db_path``. Every ``/qms/v1`` request needs ``X-API-Key``. Field names are the QMS's
own (camelCase); quantities and limits are decimal strings; timestamps ISO 8601 with an offset.

Codes and units (the QMS's own)
-------------------------------
- units (lower case, SI-ish): ``pcs``, ``kg``, ``g``, ``m``, ``mm``, ``um``, ``N``, ``Nm``, ``bar``,
  ``degC``, ``%`` (ERP ``ST``/``H87`` = QMS ``pcs``)
- lot ``origin``: ``PRODUCTION`` (in-process, SAP origin 03), ``FINAL`` (goods receipt from
  production, SAP 04), ``GOODS_RECEIPT`` (purchased)
- lot ``status``: ``OPEN`` → ``IN_INSPECTION`` (some results) → ``RESULTS_COMPLETE`` (every planned
  characteristic has a result) → ``DISPOSITIONED``; lot ``verdict``: ``PENDING``, ``ACCEPT``, ``REJECT``
  (any rejected characteristic)
- result ``verdict``: ``ACCEPT`` | ``REJECT`` (computed from ``lower``/``upper`` when omitted)
- hold ``reasonCode``: ``QH-DIM``, ``QH-VIS``, ``QH-MAT``, ``QH-FUNC``, ``QH-SUSP``; hold ``status``
  ``ACTIVE`` | ``RELEASED``
- disposition ``code``: ``UA`` use as is (= usage decision accept / ``release``), ``RW`` rework,
  ``SC`` scrap

Errors: ``{"error": {"code": "LOT_NOT_FOUND", "message": "...", "details": [...]}}`` — 404
``LOT_NOT_FOUND``/``HOLD_NOT_FOUND``/``NOT_FOUND``; 409 ``LOT_CLOSED`` (results or a hold on a
dispositioned lot), ``LOT_ALREADY_DISPOSITIONED``; 422 ``VALIDATION_FAILED`` (details
``[{"field", "message"}]``), ``CHAR_UNKNOWN``, ``UNIT_MISMATCH``, ``VERDICT_REQUIRED``; 401
``UNAUTHORIZED``; 503 ``SERVICE_UNAVAILABLE``.

Inspection lots
---------------
- ``POST /qms/v1/lots`` → 201 (200 with the existing lot when ``externalRef`` repeats for the order)::

    {"orderRef": "1004157", "plant": "1000", "material": "FG-100", "lotQty": "100", "unit": "pcs",
     "origin": "FINAL", "externalRef": "pb-1004157-final",
     "plan": [{"charCode": "DIA-OUT", "description": "outer diameter", "unit": "mm",
               "target": "10.00", "lower": "9.95", "upper": "10.05"},
              {"charCode": "VISUAL", "qualitative": true}]}

  answer: the lot with ``lotId`` (``QL-000001``), ``status``, ``verdict``, ``results``, ``disposition``, ``createdAt``
- ``GET /qms/v1/lots?order=1004157`` → ``{"items": [...], "count": n}``; ``GET /qms/v1/lots/{lotId}``
- ``POST /qms/v1/lots/{lotId}/results`` ``{"results": [{"charCode": "DIA-OUT", "measured": "10.02",
  "unit": "mm", "verdict": "ACCEPT", "inspector": "qa-3", "measuredAt": "..."}]}`` → the lot; a new
  result for a characteristic replaces the earlier one
- ``POST /qms/v1/lots/{lotId}/disposition`` ``{"code": "UA"|"RW"|"SC", "qty": "100", "unit": "pcs",
  "decidedBy": "qa-lead", "text": "..."}`` → the lot with ``disposition`` (``qty`` defaults to the
  lot quantity); releases the order's active holds on this lot or on no lot (``releasedBy``
  ``DISPOSITION``, listed in ``disposition.releasedHolds``); a second disposition is 409

Holds
-----
- ``POST /qms/v1/holds`` ``{"orderRef", "lotId", "material", "qty", "unit", "reasonCode": "QH-DIM",
  "text", "externalRef"}`` → 201 ``{"holdId": "QH-000001", "status": "ACTIVE", "placedAt", ...}``
  (200 with the existing hold when ``externalRef`` repeats for the order)
- ``GET /qms/v1/holds?order=&status=``, ``GET /qms/v1/holds/{holdId}``
- ``DELETE /qms/v1/holds/{holdId}?releasedBy=&text=`` or ``POST /qms/v1/holds/{holdId}/release``
  ``{"releasedBy", "text"}`` → the hold, ``RELEASED`` (releasing a released hold changes nothing)

Admin (no auth, no faults): ``GET /admin/health``, ``GET /admin/state``, ``POST /admin/reset``,
``GET|PUT|DELETE /admin/faults`` (``{"latency_ms", "latency_jitter_ms", "error_503_ratio", "paths", "seed"}``).
'''

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse

from plantbridge_devtools.simulators.common.admin import build_admin_router
from plantbridge_devtools.simulators.common.errors import ErrorStyle, SimError, install_errors
from plantbridge_devtools.simulators.common.faults import FaultInjector
from plantbridge_devtools.simulators.common.guard import Guard
from plantbridge_devtools.simulators.common.state import SqliteState
from plantbridge_devtools.simulators.qms.core import DispositionIn, HoldIn, LotIn, Qms, ReleaseIn, ResultsIn, summary

DEFAULT_API_KEYS = ("qms-dev-key",)


def _render(error: SimError) -> dict[str, Any]:
    body: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.details is not None:
        body["details"] = error.details
    return {"error": body}


STYLE = ErrorStyle(render=_render)


def build_api(qms: Qms) -> APIRouter:
    api = APIRouter(prefix="/qms/v1", tags=["qms"])

    @api.post("/lots", status_code=201)
    async def create_lot(body: LotIn) -> JSONResponse:
        lot, created = qms.create_lot(body)
        return JSONResponse(lot, status_code=201 if created else 200)

    @api.get("/lots")
    async def list_lots(order: str | None = None) -> dict[str, Any]:
        return summary(qms.lots(order))

    @api.get("/lots/{lot_id}")
    async def get_lot(lot_id: str) -> dict[str, Any]:
        return qms.lot(lot_id)

    @api.post("/lots/{lot_id}/results")
    async def results(lot_id: str, body: ResultsIn) -> dict[str, Any]:
        return qms.record_results(lot_id, body)

    @api.post("/lots/{lot_id}/disposition")
    async def disposition(lot_id: str, body: DispositionIn) -> dict[str, Any]:
        return qms.disposition(lot_id, body)

    @api.post("/holds", status_code=201)
    async def place_hold(body: HoldIn) -> JSONResponse:
        hold, created = qms.place_hold(body)
        return JSONResponse(hold, status_code=201 if created else 200)

    @api.get("/holds")
    async def list_holds(order: str | None = None, status: str | None = None) -> dict[str, Any]:
        return summary(qms.holds(order, status))

    @api.get("/holds/{hold_id}")
    async def get_hold(hold_id: str) -> dict[str, Any]:
        return qms.hold(hold_id)

    @api.delete("/holds/{hold_id}")
    async def delete_hold(hold_id: str, releasedBy: str = "api", text: str = "") -> dict[str, Any]:
        return qms.release_hold(hold_id, ReleaseIn(releasedBy=releasedBy, text=text))

    @api.post("/holds/{hold_id}/release")
    async def release_hold(hold_id: str, body: ReleaseIn | None = None) -> dict[str, Any]:
        return qms.release_hold(hold_id, body or ReleaseIn())

    return api


def create_app(
    db_path: str, *, api_keys: Sequence[str] = DEFAULT_API_KEYS, api_key_header: str = "X-API-Key"
) -> FastAPI:
    state = SqliteState(db_path)
    qms = Qms(state)
    faults = FaultInjector()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        state.close()

    app = FastAPI(title="QualityHub QMS simulator", version="1", lifespan=lifespan)
    app.state.qms = qms
    app.state.faults = faults
    install_errors(app, STYLE)
    app.include_router(build_api(qms))
    app.include_router(build_admin_router(system="qms", state=state, faults=faults))
    app.add_middleware(Guard, api_keys=api_keys, header=api_key_header, faults=faults, style=STYLE)
    return app
