"""The HTTP gateway (FastAPI): ERP intake, plant events, the supervisor API. OpenAPI at `/docs`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from plantbridge.connectors.ports import OrderSource
from plantbridge.gateway import routes_erp, routes_orders, routes_plant
from plantbridge.gateway.deps import GatewayDeps, default_policy
from plantbridge.gateway.errors import install_error_handlers
from plantbridge.gateway.inbox import Intake
from plantbridge.gateway.openapi_examples import plant_events_body
from plantbridge.store.api_keys import ApiKeys
from plantbridge.telemetry import tracing_enabled

__all__ = ["GatewayDeps", "OrderSource", "create_app", "default_policy"]

log = logging.getLogger("plantbridge.gateway")


async def redrive_received(intake: Intake, before: datetime) -> int:
    """Re-drive what a previous process stored but never handed over (it died in between)."""
    done = await intake.replay(status="received", received_before=before)
    if done:
        log.info("re-drove %d messages left 'received' by a previous gateway process", len(done))
    return len(done)


def create_app(deps: GatewayDeps) -> FastAPI:
    intake = Intake(deps)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await deps.db.init()
        task = None
        if deps.redrive_on_startup:
            task = asyncio.create_task(redrive_received(intake, datetime.now(UTC)))
        app.state.startup_redrive = task
        yield
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    app = FastAPI(
        title="plantbridge gateway",
        version="1",
        description="ERP intake (S/4HANA business events, LOIPRO IDocs), plant events (ARCHITECTURE §7) and the "
                    "supervisor API. Every request needs `Authorization: Bearer <key>`.",
        lifespan=lifespan,
    )
    app.state.deps = deps
    app.state.intake = intake
    app.state.keys = ApiKeys(deps.db)
    install_error_handlers(app)

    @app.get("/healthz", tags=["health"], summary="Liveness and readiness (no authentication)")
    async def healthz() -> dict[str, str]:
        """The gateway answers and its store is reachable."""
        async with deps.db.engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")
        return {"status": "ok"}

    app.include_router(routes_plant.router)
    app.include_router(routes_erp.router)
    app.include_router(routes_orders.router)
    _install_openapi(app)
    if tracing_enabled():  # one trace per plant event: this request -> workflow -> activity -> connector call
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(app)
    return app


def _install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        body, defs = plant_events_body()
        schema.setdefault("components", {}).setdefault("schemas", {}).update(defs)
        schema["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        schema["security"] = [{"bearer": []}]
        for item in schema.get("paths", {}).values():
            for op in item.values():
                if isinstance(op, dict) and op.pop("x-plantbridge-body", None) == "plant_events":
                    op["requestBody"] = body
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
