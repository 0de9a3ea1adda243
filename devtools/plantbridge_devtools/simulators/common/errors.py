"""Errors in each simulator's own JSON style.

Business code raises :class:`SimError` (HTTP status, the system's error code, a message, optional
details); an :class:`ErrorStyle` renders it as that system renders errors. ``install_errors``
routes FastAPI's validation errors (422), unknown routes (404) and wrong methods (405) through the
same style, so a client never sees FastAPI's default ``{"detail": ...}`` shape.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException


class SimError(Exception):
    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


@dataclass(frozen=True)
class ErrorStyle:
    """How one system spells its errors: the body renderer and the codes of the generic cases."""

    render: Callable[[SimError], dict[str, Any]]
    media_type: str = "application/json"
    unauthorized: str = "UNAUTHORIZED"
    unavailable: str = "SERVICE_UNAVAILABLE"
    validation: str = "VALIDATION_FAILED"
    not_found: str = "NOT_FOUND"
    method_not_allowed: str = "METHOD_NOT_ALLOWED"

    def response(self, error: SimError, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse(self.render(error), status_code=error.status, media_type=self.media_type, headers=headers)


def validation_details(exc: RequestValidationError) -> list[dict[str, str]]:
    return [
        {"field": ".".join(str(p) for p in err.get("loc", ()) if p != "body"), "message": str(err.get("msg", ""))}
        for err in exc.errors()
    ]


def install_errors(app: FastAPI, style: ErrorStyle) -> None:
    async def on_sim_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, SimError)
        return style.response(exc)

    async def on_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        details = validation_details(exc)
        first = details[0] if details else {"field": "", "message": "invalid request"}
        message = f"{first['field']}: {first['message']}" if first["field"] else first["message"]
        return style.response(SimError(422, style.validation, message, details))

    async def on_http(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 404:
            return style.response(SimError(404, style.not_found, "no such resource"))
        if exc.status_code == 405:
            return style.response(SimError(405, style.method_not_allowed, "method not allowed"))
        return style.response(SimError(exc.status_code, f"HTTP-{exc.status_code}", str(exc.detail)))

    app.add_exception_handler(SimError, on_sim_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
