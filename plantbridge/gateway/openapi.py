"""The OpenAPI document: error answers per status, response headers, security and roles per operation.

`errors(...)` gives a route's `responses=` for the statuses it can answer (each with the `ErrorBody`
schema). `install_openapi` adds what FastAPI does not derive itself: the plant-event and supervisor
request bodies, `401`/`403` on every authenticated operation, and the roles in each description.
Regenerate the checked-in copy with `python -m plantbridge.gateway.openapi_doc > docs/openapi.json`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel

from plantbridge.gateway import deprecations
from plantbridge.gateway.openapi_examples import plant_events_body
from plantbridge.gateway.schemas import ErrorBody

BEARER = "bearer"
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before sending the same request again",
                               "schema": {"type": "integer", "minimum": 0}}}
CHALLENGE = {"WWW-Authenticate": {"description": "`Bearer realm=\"plantbridge\"`", "schema": {"type": "string"}}}
INBOX_ID = {"X-Inbox-Id": {"description": "The id of the stored message in the gateway's inbox "
                                          "(`GET /v1/inbox`, `plantbridge replay`)",
                           "schema": {"type": "integer"}}}

_DEFAULTS: dict[int, tuple[str, dict[str, Any] | None]] = {
    401: ("No API key, a malformed `Authorization` header, or an unknown or revoked key", CHALLENGE),
    403: ("The key's role may not call this operation, or the key is not bound to the plant", None),
    404: ("Not found", None),
    409: ("The order is not in a state that allows this", None),
    413: ("The body is larger than the gateway's limit (1 MiB by default; 8 MiB for IDocs)", None),
    415: ("The `Content-Type` is not one of the documented media types", None),
    422: ("The request does not match the schema: `fields` names each invalid field", None),
    429: ("Too many requests; retry after `Retry-After` seconds", RETRY_AFTER),
    502: ("The ERP did not answer", None),
    503: ("Temporal (or the named dependency) is unavailable or overloaded; nothing was lost, retry after "
          "`Retry-After` seconds", RETRY_AFTER),
}


def errors(*statuses: int, headers: dict[str, Any] | None = None, **described: str) -> dict[int | str, Any]:
    """`responses=` for these error statuses; `described` overrides a description (`e404="..."`)."""
    out: dict[int | str, Any] = {}
    for status in statuses:
        text, own = _DEFAULTS[status]
        entry: dict[str, Any] = {"model": ErrorBody, "description": described.get(f"e{status}", text)}
        merged = {**(own or {}), **(headers or {})}
        if merged:
            entry["headers"] = merged
        out[status] = entry
    return out


def success(model: Any, description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"model": model, "description": description}
    if headers:
        entry["headers"] = headers
    return entry


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _error_response(status: int) -> dict[str, Any]:
    text, headers = _DEFAULTS[status]
    out: dict[str, Any] = {"description": text, "content": {"application/json": {"schema": _ref("ErrorBody")}}}
    if headers:
        out["headers"] = headers
    return out


def _roles(route: APIRoute) -> frozenset[str] | None:
    for dep in route.dependant.dependencies:
        roles = getattr(dep.call, "roles", None)
        if roles is not None:
            return frozenset(roles)
    return None


def _api_routes(routes: Sequence[Any]) -> Iterator[APIRoute]:
    """The app's operations, also through included routers (FastAPI >= 0.120 keeps them as one route each).

    The gateway includes its routers without a prefix, so a route's path is the operation's path."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _api_routes(included.routes)


def build_openapi(app: FastAPI, body_models: tuple[type[BaseModel], ...] = ()) -> dict[str, Any]:
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    body, defs = plant_events_body()
    schemas.update(defs)
    schemas.update(_body_schemas(body_models))
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    components.setdefault("securitySchemes", {})[BEARER] = {
        "type": "http", "scheme": "bearer",
        "description": "An API key (`plantbridge keys create --name N --role R --plants P`) as a bearer token"}
    schema.pop("security", None)
    for route in _api_routes(app.routes):
        roles = _roles(route)
        for method in route.methods or ():
            op = schema.get("paths", {}).get(route.path_format, {}).get(method.lower())
            if op is None:
                continue
            if deprecations.for_target("endpoint", f"{method} {route.path_format}") is not None:
                op["deprecated"] = True
            media = op.pop("x-plantbridge-media", None)
            if media:  # the success answer's own media type; errors stay application/json
                ok = op["responses"]["200"]["content"]
                ok[media] = ok.pop("application/json")
            marker = op.pop("x-plantbridge-body", None)
            if marker == "plant_events":
                op["requestBody"] = body
            elif marker == "telemetry":
                op["requestBody"] = _telemetry_body()
            if roles is None:
                op["security"] = []
                continue
            op["security"] = [{BEARER: []}]
            op["x-roles"] = sorted(roles)
            who = ", ".join(f"`{r}`" for r in sorted(roles))
            bound = ("" if "contracts" in op.get("tags", ()) else
                     "; the key must be bound to the plant concerned (or to `*`)")
            note = f"**Roles:** {who}{bound}. Authenticate with `Authorization: Bearer <key>`."
            op["description"] = f"{op['description']}\n\n{note}" if op.get("description") else note
            for status in (401, 403, 429):  # 429: the key's token bucket, or the look-up limit of unknown keys
                op["responses"].setdefault(str(status), _error_response(status))
    return schema


def _body_schemas(body_models: tuple[type[BaseModel], ...]) -> dict[str, Any]:
    """Request bodies the routes read themselves (kept raw first), as named schemas; app.py hands them in."""
    out: dict[str, Any] = {}
    for model in body_models:
        s = model.model_json_schema(ref_template="#/components/schemas/{model}")
        out.update(s.pop("$defs", {}))
        out[model.__name__] = s
    return out


def _telemetry_body() -> dict[str, Any]:
    return {"required": True,
            "description": "JSON; may be compressed with `Content-Encoding: gzip` (the whole body)",
            "content": {"application/json": {"schema": _ref("TelemetryBatch")}}}


def install_openapi(app: FastAPI, body_models: tuple[type[BaseModel], ...] = ()) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app, body_models)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def render(app: FastAPI) -> str:
    """The document as checked in (docs/openapi.json): sorted keys, two-space indent, final newline."""
    return json.dumps(app.openapi(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
