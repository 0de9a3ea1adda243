"""The HTTP gateway (FastAPI): ERP intake, plant events, the supervisor API. OpenAPI at `/docs`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from fastapi import FastAPI

from plantbridge.batch.telemetry_archive import TelemetryArchive
from plantbridge.canonical.rollup import TelemetryBatch
from plantbridge.connectors.ports import OrderSource
from plantbridge.gateway import (
    routes_erp,
    routes_odoo,
    routes_orders,
    routes_plant,
    routes_schemas,
    routes_telemetry,
)
from plantbridge.gateway.deprecations import DeprecationHeaders
from plantbridge.gateway.deps import GatewayDeps, default_policy
from plantbridge.gateway.erp_intake import CloudEvent
from plantbridge.gateway.errors import install_error_handlers
from plantbridge.gateway.health import install_health
from plantbridge.gateway.inbox import Intake
from plantbridge.gateway.odoo_intake import install_log_redaction
from plantbridge.gateway.openapi import install_openapi
from plantbridge.gateway.ratelimit import DEFAULT_RATES, RateLimiter
from plantbridge.gateway.responses import JsonResponse
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


async def redrive_deferred_forever(intake: Intake, every: float = 1.0) -> None:
    """The gateway's re-driver: events Temporal refused as "not now" are delivered again by themselves."""
    while True:
        try:
            handled = await intake.redrive_deferred()
            if handled:
                log.info("re-drove %d deferred messages", handled)
            stale = await intake.redrive_stale_received()
            if stale:
                log.info("re-drove %d messages a gateway left 'received' (its lease ran out)", stale)
        except asyncio.CancelledError:
            raise
        except Exception:  # the store or Temporal is away: try again on the next round
            log.exception("re-driving deferred messages failed")
        await asyncio.sleep(every)


def create_app(deps: GatewayDeps) -> FastAPI:
    intake = Intake(deps)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await deps.db.init()
        task = None
        if deps.redrive_on_startup:
            task = asyncio.create_task(redrive_received(intake, datetime.now(UTC)))
        app.state.startup_redrive = task
        redriver = asyncio.create_task(redrive_deferred_forever(intake, deps.redrive_every.total_seconds()))
        yield
        for running in (task, redriver):
            if running is not None and not running.done():
                running.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await running

    app = FastAPI(
        title="plantbridge gateway",
        version="1",
        description="ERP intake (S/4HANA business events, LOIPRO IDocs), plant events (ARCHITECTURE §7) and the "
                    "supervisor API. Every operation but `/healthz` and `/readyz` needs `Authorization: Bearer <key>` "
                    "with a key of one of the roles its description names. Errors answer `ErrorBody`. "
                    "The messages' JSON Schemas, per contract version: `GET /v1/schemas`. An answer touched by "
                    "something deprecated carries `Deprecation` (RFC 9745), `Sunset` (RFC 8594) and a `Link` to "
                    "`GET /v1/deprecations`.",
        lifespan=lifespan,
        default_response_class=JsonResponse,
    )
    app.state.deps = deps
    app.state.intake = intake
    app.state.keys = ApiKeys(deps.db)
    app.state.limiter = RateLimiter(rates=dict(deps.rate_limits or DEFAULT_RATES), lookup=deps.lookup_rate)
    app.state.telemetry = TelemetryArchive(deps.telemetry_root)
    install_error_handlers(app)

    install_health(app, deps)
    app.include_router(routes_plant.router)
    app.include_router(routes_telemetry.router)
    app.include_router(routes_erp.router)
    app.include_router(routes_odoo.router)
    install_log_redaction()
    app.include_router(routes_orders.router)
    app.include_router(routes_schemas.router)
    app.add_middleware(DeprecationHeaders)
    # Bodies the routes read raw (stored first), named in the document.
    install_openapi(app, (routes_orders.ResolveBody, routes_orders.LeverBody, CloudEvent, TelemetryBatch))
    if tracing_enabled():  # one trace per plant event: this request -> workflow -> activity -> connector call
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(app, excluded_urls="/v1/erp/odoo/events")  # token in the URL
    return app
