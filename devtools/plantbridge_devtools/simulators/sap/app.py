"""The S/4HANA stand-in as an ASGI application.

``create_app(db_path)`` serves, under ``/sap/opu/odata/sap/<SERVICE>/``, the OData v2 services
API_PRODUCTION_ORDER_2_SRV, API_PROD_ORDER_CONFIRMATION_2_SRV, API_MATERIAL_DOCUMENT_SRV,
API_INSPECTIONLOT_SRV and API_MAINTNOTIFICATION (see ``gateway.py``), and the admin API under
``/admin`` (see ``admin.py``). State is kept in the SQLite file ``db_path``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from plantbridge_devtools.simulators.sap.admin import build_router, sap_error_handler
from plantbridge_devtools.simulators.sap.events import EventPublisher
from plantbridge_devtools.simulators.sap.faults import FaultInjector
from plantbridge_devtools.simulators.sap.gateway import ROOT, Gateway
from plantbridge_devtools.simulators.sap.messages import SapError
from plantbridge_devtools.simulators.sap.rules import RuleBook
from plantbridge_devtools.simulators.sap.runtime import DEFAULT_USERS, Runtime, Settings
from plantbridge_devtools.simulators.sap.security import SessionManager
from plantbridge_devtools.simulators.sap.services import build_handlers
from plantbridge_devtools.simulators.sap.state import Store

ODATA_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "MERGE", "DELETE"]


def create_app(
    db_path: str,
    *,
    webhook_url: str | None = None,
    webhook_headers: dict[str, str] | None = None,
    client: str = "100",
    users: dict[str, str] | None = None,
    sid: str = "S4H",
    refuse_duplicates: bool | None = None,
    webhook_retry_for_s: float = 0.0,
) -> FastAPI:
    """Build the simulator app; ``users`` maps user names to passwords (default PLANTBRIDGE/secret).
    ``refuse_duplicates`` (default: env PLANTBRIDGE_SAP_SIM_REFUSE_DUPLICATES) refuses a second posting
    with the same external key; by default it is taken, as a real system may."""
    if refuse_duplicates is None:
        refuse_duplicates = os.environ.get("PLANTBRIDGE_SAP_SIM_REFUSE_DUPLICATES", "") in ("1", "true", "yes")
    settings = Settings(client=client, sid=sid, users=dict(users or DEFAULT_USERS),
                        refuse_duplicate_keys=refuse_duplicates)
    store = Store(db_path)
    runtime = Runtime(
        settings=settings,
        store=store,
        rules=RuleBook(store),
        faults=FaultInjector(),
        sessions=SessionManager(settings.users, sid, client),
        publisher=EventPublisher(webhook_url, dict(webhook_headers or {}), source=f"/default/sap.s4.beh/{client}",
                                 retry_for_s=webhook_retry_for_s),
    )
    gateway = Gateway(runtime, build_handlers(runtime))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await runtime.publisher.aclose()
        store.close()

    app = FastAPI(title="plantbridge S/4HANA simulator", lifespan=lifespan)
    app.state.runtime = runtime
    app.include_router(build_router(runtime))
    app.add_exception_handler(SapError, sap_error_handler)
    for path in (f"{ROOT}{{service}}", f"{ROOT}{{service}}/{{path:path}}"):
        app.add_route(path, gateway.handle, methods=ODATA_METHODS, include_in_schema=False)
    return app
