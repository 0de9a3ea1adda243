"""`GET /healthz` (liveness: the process answers and its store does) and `GET /readyz` (Temporal and the store
answer within a bounded time). Both are public: no authentication."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import timedelta

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from plantbridge.gateway.deps import GatewayDeps
from plantbridge.gateway.errors import ApiError, retry_after
from plantbridge.gateway.openapi import RETRY_AFTER, errors, success
from plantbridge.gateway.responses import JsonResponse
from plantbridge.gateway.schemas import Health, Readiness

PROBE_TIMEOUT_S = 2.0


async def _store(deps: GatewayDeps) -> None:
    async with deps.db.engine.connect() as conn:
        await conn.exec_driver_sql("SELECT 1")


async def _temporal(deps: GatewayDeps) -> None:
    # The cheapest call that needs the frontend and the namespace: describe the namespace.
    from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest

    await deps.client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace=deps.client.namespace), timeout=timedelta(seconds=PROBE_TIMEOUT_S))


async def _probe(name: str, check: Awaitable[None]) -> tuple[str, str]:
    try:
        await asyncio.wait_for(check, PROBE_TIMEOUT_S)
    except TimeoutError:
        return name, f"no answer within {PROBE_TIMEOUT_S:g} s"
    except Exception as err:
        return name, f"{type(err).__name__}: {err}"[:300]
    return name, "ok"


def install_health(app: FastAPI, deps: GatewayDeps) -> None:
    @app.get("/healthz", tags=["health"], summary="Liveness: the gateway answers and its store is reachable",
             response_model=Health, responses=errors(503, e503="The gateway's store does not answer"))
    async def healthz() -> dict[str, str]:
        _, result = await _probe("store", _store(deps))
        if result != "ok":
            raise ApiError(503, "store_unavailable", f"the store does not answer: {result}", headers=retry_after())
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], summary="Readiness: Temporal and the store answer (each within 2 s)",
             response_model=Readiness,
             responses={503: success(Readiness, "Temporal or the store does not answer; `checks` says which",
                                     RETRY_AFTER)})
    async def readyz() -> JSONResponse:
        checks = dict(await asyncio.gather(_probe("temporal", _temporal(deps)), _probe("store", _store(deps))))
        ready = all(v == "ok" for v in checks.values())
        body = {"status": "ok" if ready else "unavailable", "checks": checks}
        return JsonResponse(body, status_code=200 if ready else 503, headers=None if ready else retry_after())
