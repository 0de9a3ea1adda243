'''The WMS stand-in ("StockPilot WMS") as an ASGI application.

``create_app(db_path, api_keys=["wms-dev-key"], api_key_header="X-API-Key")`` keeps its state in the
SQLite file ``db_path``. Every ``/wms/api`` request needs ``X-API-Key``. Field names are the WMS's
own (camelCase); quantities are decimal strings; timestamps ISO 8601 with an offset.

Codes and units (the WMS's own)
-------------------------------
- units: ``EA`` each (ERP ``ST``/``H87``), ``KG``, ``LTR``, ``MTR``, ``BOX``; a material keeps the unit
  it was first stocked in (another unit is 422 ``UNIT_MISMATCH``)
- locations: ``RM-A01``, ``RM-B01`` (raw material storage), ``LINE-L1``, ``LINE-L2`` (line side),
  ``PROD-OUT`` (production output: transfers out of it need no stock on hand, the receipt from
  production is implicit, but are refused while the material is blocked), ``QI-01`` (quarantine),
  ``FG-01`` (finished goods), ``SP-01`` (spare parts), ``DOCK-01`` (shipping)
- block ``reasonCode``: ``QC-HOLD`` (default), ``DAMAGE``, ``RECOUNT``, ``CUST-HOLD``

Idempotency and references
--------------------------
Every ``POST`` accepts ``Idempotency-Key: <up to 255 chars>``. A repeat with the same key and the
same method, path and body gets the first answer again (same status and body, header
``Idempotent-Replayed: true``), without a second change; the same key with another request is 422
``IDEMPOTENCY_KEY_REUSED``. Each creating request carries the caller's ``reference``, unique per
collection: a second request with a used reference (and no matching key) is 409
``DUPLICATE_REFERENCE`` with the existing id in ``errors``. Look requests up by reference with
``GET /wms/api/<collection>?reference=R`` or across collections with ``GET /wms/api/references/{R}``
→ ``{"reference", "items": [{"type", "id", "document"}]}``.

Errors: RFC 7807 ``application/problem+json``: ``{"type": "urn:stockpilot:problem:insufficient-stock",
"title": "INSUFFICIENT_STOCK", "status": 409, "detail": "...", "errors": [...]}``. Codes: 404
``NOT_FOUND``; 409 ``INSUFFICIENT_STOCK``, ``STOCK_BLOCKED``, ``DUPLICATE_REFERENCE``,
``BLOCK_NOT_ACTIVE``, ``STAGING_CANCELLED``, ``STAGING_DONE``, ``RESERVATION_CANCELLED``; 422
``VALIDATION_FAILED`` (``errors: [{"field", "message"}]``), ``UNIT_MISMATCH``, ``SAME_LOCATION``,
``IDEMPOTENCY_KEY_REUSED``; 401 ``UNAUTHORIZED``; 503 ``SERVICE_UNAVAILABLE``.

Routes
------
- ``POST /wms/api/staging-requests`` ``{"reference", "orderRef", "toLocation": "LINE-L1",
  "neededBy", "items": [{"material", "qty", "unit": "EA", "fromLocation"}]}`` → 201
  ``{"stagingId": "STG-000001", "status": "OPEN", "tasks": [{"taskId": "TSK-000001", "material",
  "qty", "unit", "fromLocation", "toLocation", "status": "OPEN"}], ...}`` (``fromLocation`` defaults
  to the storage location with the most stock). ``GET .../staging-requests?reference=``, ``GET .../{id}``,
  ``POST .../{id}/tasks/{taskId}/confirm`` (the picker moves the stock; ``IN_PROGRESS``/``STAGED``),
  ``POST .../{id}/cancel`` (``CANCELLED``; 409 once ``STAGED``)
- ``POST /wms/api/stock-blocks`` ``{"reference", "material", "location", "qty", "unit",
  "reasonCode": "QC-HOLD", "orderRef", "text"}`` → 201 ``{"blockId": "BLK-000001", "status":
  "ACTIVE", "scope": "QTY"|"ALL", ...}``; without ``location`` it covers every location, without
  ``qty`` all stock in scope (incoming included). ``POST .../stock-blocks/{id}/release`` ``{"text"}``
  → ``RELEASED`` (409 ``BLOCK_NOT_ACTIVE`` if it is not active). ``GET .../stock-blocks?reference=``, ``/{id}``
- ``POST /wms/api/transfers`` ``{"reference", "material", "qty", "unit", "fromLocation": "PROD-OUT",
  "toLocation": "FG-01", "orderRef", "batch"}`` → 201 ``{"transferId": "TRF-000001", "status":
  "CONFIRMED", ...}`` (stock moves at once). ``GET .../transfers?reference=``, ``/{id}``
- ``POST /wms/api/shipment-readiness`` ``{"reference", "orderRef", "material", "qty", "unit",
  "location": "FG-01", "shipDate"}`` → 201 ``{"readinessId": "SR-000001", "status": "READY"|"BLOCKED"|"SHORT",
  "availableQty"}``. ``GET .../shipment-readiness?reference=``, ``/{id}``
- ``POST /wms/api/reservations`` ``{"reference", "material", "qty", "unit", "location": "SP-01",
  "equipment", "orderRef", "neededBy"}`` → 201 ``{"reservationId": "RSV-000001", "status":
  "RESERVED"|"PARTIAL", "reservedQty"}``; ``POST .../reservations/{id}/cancel``.
  ``GET .../reservations?reference=``, ``/{id}``
- ``GET /wms/api/locations`` → ``{"items": [{"location": "RM-A01", "type": "STORAGE"}, ...]}``: the location
  master (types ``STORAGE``, ``LINESIDE``, ``PRODUCTION``, ``QUARANTINE``, ``SPARES``, ``SHIPPING``)
- ``GET /wms/api/stock?material=&location=`` → ``{"material", "unit", "onHand", "blocked", "reserved",
  "available", "locations": [{"location", "onHand", "blocked", "reserved", "available"}],
  "activeBlocks": [...]}``; without ``material`` → ``{"items": [...]}`` for every material

Admin (no auth, no faults): ``GET /admin/health``, ``GET /admin/state``, ``POST /admin/reset``,
``GET|PUT|DELETE /admin/faults``, ``PUT /admin/stock`` ``{"material", "location", "qty", "unit"}``
(set stock on hand).
'''

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from plantbridge_devtools.simulators.common.admin import build_admin_router
from plantbridge_devtools.simulators.common.errors import ErrorStyle, SimError, install_errors
from plantbridge_devtools.simulators.common.faults import FaultInjector
from plantbridge_devtools.simulators.common.guard import Guard
from plantbridge_devtools.simulators.common.state import Doc, SqliteState
from plantbridge_devtools.simulators.common.util import fingerprint
from plantbridge_devtools.simulators.wms.core import (
    BLOCK,
    LOCATIONS,
    READINESS,
    RESERVATION,
    STAGING,
    TRANSFER,
    BlockIn,
    ReadinessIn,
    ReleaseIn,
    ReservationIn,
    StagingIn,
    StockIn,
    TransferIn,
    Wms,
)

DEFAULT_API_KEYS = ("wms-dev-key",)
IDEMPOTENCY_HEADER = "Idempotency-Key"


def _render(error: SimError) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"urn:stockpilot:problem:{error.code.lower().replace('_', '-')}",
        "title": error.code,
        "status": error.status,
        "detail": error.message,
    }
    if error.details is not None:
        body["errors"] = error.details
    return body


STYLE = ErrorStyle(render=_render, media_type="application/problem+json")
IdempotencyKey = Header(default=None, alias=IDEMPOTENCY_HEADER, max_length=255)


def build_api(wms: Wms) -> APIRouter:
    api = APIRouter(prefix="/wms/api", tags=["wms"])
    state = wms.state

    def idempotent(request: Request, key: str | None, body: BaseModel | None, status: int,
                   action: Callable[[], Doc]) -> JSONResponse:
        print_ = fingerprint(request.method, request.url.path, body.model_dump(mode="json") if body else None)
        with state.transaction():
            if key:
                earlier = state.recall_answer(key)
                if earlier is not None:
                    if earlier[0] != print_:
                        raise SimError(422, "IDEMPOTENCY_KEY_REUSED",
                                       f"{IDEMPOTENCY_HEADER} {key} was used for another request")
                    return JSONResponse(earlier[2], status_code=earlier[1], media_type="application/json",
                                        headers={"Idempotent-Replayed": "true"})
            doc = action()
            if key:
                state.remember_answer(key, print_, status, doc)
        return JSONResponse(doc, status_code=status)

    def items(docs: list[Doc]) -> dict[str, Any]:
        return {"items": docs, "count": len(docs)}

    # staging
    @api.post("/staging-requests", status_code=201)
    async def stage(request: Request, body: StagingIn, key: str | None = IdempotencyKey) -> JSONResponse:
        return idempotent(request, key, body, 201, lambda: wms.stage(body))

    @api.get("/staging-requests")
    async def list_staging(reference: str | None = None) -> dict[str, Any]:
        return items(wms.by_reference(STAGING, reference))

    @api.get("/staging-requests/{staging_id}")
    async def get_staging(staging_id: str) -> Doc:
        return wms.get(STAGING, staging_id, "staging request")

    @api.post("/staging-requests/{staging_id}/tasks/{task_id}/confirm")
    async def confirm_task(request: Request, staging_id: str, task_id: str,
                           key: str | None = IdempotencyKey) -> JSONResponse:
        return idempotent(request, key, None, 200, lambda: wms.confirm_task(staging_id, task_id))

    @api.post("/staging-requests/{staging_id}/tasks/{task_id}/cancel")
    async def cancel_task(request: Request, staging_id: str, task_id: str,
                          key: str | None = IdempotencyKey) -> JSONResponse:
        return idempotent(request, key, None, 200, lambda: wms.cancel_task(staging_id, task_id))

    @api.post("/staging-requests/{staging_id}/cancel")
    async def cancel_staging(request: Request, staging_id: str, key: str | None = IdempotencyKey) -> JSONResponse:
        return idempotent(request, key, None, 200, lambda: wms.cancel_staging(staging_id))

    # blocks
    @api.post("/stock-blocks", status_code=201)
    async def block(request: Request, body: BlockIn, key: str | None = IdempotencyKey) -> JSONResponse:
        return idempotent(request, key, body, 201, lambda: wms.block(body))

    @api.get("/stock-blocks")
    async def list_blocks(reference: str | None = None) -> dict[str, Any]:
        return items(wms.by_reference(BLOCK, reference))

    @api.get("/stock-blocks/{block_id}")
    async def get_block(block_id: str) -> Doc:
        return wms.get(BLOCK, block_id, "stock block")

    @api.post("/stock-blocks/{block_id}/release")
    async def release(request: Request, block_id: str, body: ReleaseIn | None = None,
                      key: str | None = IdempotencyKey) -> JSONResponse:
        return idempotent(request, key, body, 200, lambda: wms.release_block(block_id, body or ReleaseIn()))

    # transfers
    @api.post("/transfers", status_code=201)
    async def transfer(request: Request, body: TransferIn, key: str | None = IdempotencyKey) -> JSONResponse:
        return idempotent(request, key, body, 201, lambda: wms.transfer(body))

    @api.get("/transfers")
    async def list_transfers(reference: str | None = None) -> dict[str, Any]:
        return items(wms.by_reference(TRANSFER, reference))

    @api.get("/transfers/{transfer_id}")
    async def get_transfer(transfer_id: str) -> Doc:
        return wms.get(TRANSFER, transfer_id, "transfer")

    # shipment readiness
    @api.post("/shipment-readiness", status_code=201)
    async def readiness(request: Request, body: ReadinessIn, key: str | None = IdempotencyKey) -> JSONResponse:
        return idempotent(request, key, body, 201, lambda: wms.readiness(body))

    @api.get("/shipment-readiness")
    async def list_readiness(reference: str | None = None) -> dict[str, Any]:
        return items(wms.by_reference(READINESS, reference))

    @api.get("/shipment-readiness/{readiness_id}")
    async def get_readiness(readiness_id: str) -> Doc:
        return wms.get(READINESS, readiness_id, "shipment readiness")

    # reservations
    @api.post("/reservations", status_code=201)
    async def reserve(request: Request, body: ReservationIn, key: str | None = IdempotencyKey) -> JSONResponse:
        return idempotent(request, key, body, 201, lambda: wms.reserve(body))

    @api.get("/reservations")
    async def list_reservations(reference: str | None = None) -> dict[str, Any]:
        return items(wms.by_reference(RESERVATION, reference))

    @api.get("/reservations/{reservation_id}")
    async def get_reservation(reservation_id: str) -> Doc:
        return wms.get(RESERVATION, reservation_id, "reservation")

    @api.post("/reservations/{reservation_id}/cancel")
    async def cancel_reservation(request: Request, reservation_id: str,
                                 key: str | None = IdempotencyKey) -> JSONResponse:
        return idempotent(request, key, None, 200, lambda: wms.cancel_reservation(reservation_id))

    # the location master, stock and references
    @api.get("/locations")
    async def locations() -> dict[str, Any]:
        return {"items": [{"location": code, "type": kind} for code, kind in LOCATIONS.items()]}

    @api.get("/stock")
    async def stock(material: str | None = None, location: str | None = None) -> dict[str, Any]:
        if material:
            return wms.stock(material, location)
        materials = sorted({s["material"] for s in state.all("stock")})
        return items([wms.stock(m, location) for m in materials])

    @api.get("/references/{reference}")
    async def by_reference(reference: str) -> dict[str, Any]:
        found = wms.everything_by_reference(reference)
        if not found:
            raise SimError(404, "NOT_FOUND", f"no request with reference {reference}")
        return {"reference": reference, "items": found}

    return api


def create_app(
    db_path: str, *, api_keys: Sequence[str] = DEFAULT_API_KEYS, api_key_header: str = "X-API-Key"
) -> FastAPI:
    state = SqliteState(db_path)
    wms = Wms(state)
    faults = FaultInjector()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        state.close()

    app = FastAPI(title="StockPilot WMS simulator", version="1", lifespan=lifespan)
    app.state.wms = wms
    app.state.faults = faults
    install_errors(app, STYLE)
    app.include_router(build_api(wms))
    admin = APIRouter(prefix="/admin", tags=["admin"])

    @admin.put("/stock")
    async def put_stock(body: StockIn) -> Doc:
        return wms.set_stock(body)

    app.include_router(admin)
    app.include_router(build_admin_router(system="wms", state=state, faults=faults))
    app.add_middleware(Guard, api_keys=api_keys, header=api_key_header, faults=faults, style=STYLE)
    return app
