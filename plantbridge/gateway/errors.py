"""Structured errors: `{"error": {"status", "code", "message", "fields": [{"loc", "message"}]}}`."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.service import RPCError, RPCStatusCode

from plantbridge.gateway.responses import JsonResponse

log = logging.getLogger("plantbridge.gateway")

Loc = list[str | int]
RETRY_AFTER_S = 5
# Temporal answers that mean "not now": the request may be sent again unchanged.
TEMPORAL_TRANSIENT = frozenset({RPCStatusCode.UNAVAILABLE, RPCStatusCode.RESOURCE_EXHAUSTED,
                                RPCStatusCode.DEADLINE_EXCEEDED})


def retry_after(seconds: int = RETRY_AFTER_S) -> dict[str, str]:
    return {"Retry-After": str(seconds)}


class ApiError(Exception):
    """An answer other than success; rendered as the structured error body."""

    def __init__(
        self, status: int, code: str, message: str, fields: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or []
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return error_body(self.status, self.code, self.message, self.fields)


def error_body(status: int, code: str, message: str, fields: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"error": {"status": status, "code": code, "message": message, "fields": fields or []}}


def field_errors(errors: Sequence[Any], prefix: Loc | None = None) -> list[dict[str, Any]]:
    """Pydantic error entries as `{"loc": [...], "message": ...}`, locations prefixed (e.g. events, 3)."""
    out: list[dict[str, Any]] = []
    for err in errors:
        loc = [*(prefix or []), *[p if isinstance(p, int) else str(p) for p in err.get("loc", ())]]
        out.append({"loc": loc, "message": str(err.get("msg", "invalid"))[:500]})
    return out


def invalid(err: ValidationError, prefix: Loc | None = None, what: str = "body") -> ApiError:
    fields = field_errors(err.errors(include_url=False, include_input=False), prefix)
    first = fields[0] if fields else {"loc": [], "message": "invalid"}
    where = ".".join(str(p) for p in first["loc"]) or what
    return ApiError(422, "validation_error", f"invalid {what}: {where}: {first['message']}", fields)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JsonResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RPCError)
    async def _temporal_error(_: Request, exc: RPCError) -> JSONResponse:
        if exc.status in TEMPORAL_TRANSIENT:
            msg = f"Temporal is unavailable or overloaded ({exc.status.name if exc.status else 'unknown'}); retry later"
            return JsonResponse(error_body(503, "temporal_unavailable", msg), status_code=503, headers=retry_after())
        log.error("Temporal refused a gateway call: %s", exc, exc_info=exc)
        return JsonResponse(error_body(500, "internal_error", "Temporal refused the call; see the gateway's log"),
                            status_code=500)

    from plantbridge.client import TemporalUnavailable  # (the client module is heavy; the handler needs only it)

    @app.exception_handler(TemporalUnavailable)
    async def _temporal_unavailable(_: Request, exc: TemporalUnavailable) -> JSONResponse:
        msg = f"Temporal did not answer in time or is overloaded ({exc}); retry later"[:500]
        return JsonResponse(error_body(503, "temporal_unavailable", msg), status_code=503,
                            headers=retry_after(1 if exc.limit else RETRY_AFTER_S))

    @app.exception_handler(RequestValidationError)
    async def _request_validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        fields = field_errors(exc.errors())
        first = fields[0] if fields else {"loc": [], "message": "invalid"}
        msg = f"invalid request: {'.'.join(str(p) for p in first['loc'])}: {first['message']}"
        return JsonResponse(error_body(422, "validation_error", msg, fields), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 401: "unauthenticated", 403: "forbidden"}
        code = codes.get(exc.status_code, "http_error")
        return JsonResponse(error_body(exc.status_code, code, str(exc.detail)), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))
