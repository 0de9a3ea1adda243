"""The OData v2 endpoint ``/sap/opu/odata/sap/<SERVICE>/...``: URL resolution, logon, CSRF,
fault injection, rules and JSON responses, in front of the service handlers.

Resource paths understood (``Set`` an entity set, ``Fn`` a function import)::

    /                       service document         GET, HEAD
    /$metadata              EDMX                     GET
    /Set                    collection / create      GET (query options), POST (deep insert)
    /Set/$count             count                    GET
    /Set(<key>)             entity                   GET, PATCH, MERGE, PUT
    /Set(<key>)/nav         navigation               GET (+ /$count)
    /Fn?Param='value'       function import          as declared (POST)

Responses are JSON (``$format=json`` is implied; other formats are refused). ``$batch`` is not
implemented (answered as SAP does for a missing method: 501 /IWBEP/CM_MGW_RT/021).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from plantbridge_devtools.simulators.sap import messages
from plantbridge_devtools.simulators.sap.edm import EntityType, FunctionImport, Property, Schema
from plantbridge_devtools.simulators.sap.faults import ICM_503_PAGE
from plantbridge_devtools.simulators.sap.messages import SapError
from plantbridge_devtools.simulators.sap.metadata import render_metadata
from plantbridge_devtools.simulators.sap.odata import (
    Entity,
    error_body,
    etag_of,
    from_wire,
    sap_message_header,
    serialize,
    serialize_complex,
)
from plantbridge_devtools.simulators.sap.query import QueryOptions, apply, parse_options
from plantbridge_devtools.simulators.sap.rules import CHANGING_METHODS
from plantbridge_devtools.simulators.sap.runtime import Context, Runtime
from plantbridge_devtools.simulators.sap.security import Session
from plantbridge_devtools.simulators.sap.services.base import ServiceHandler

log = logging.getLogger(__name__)

ROOT = "/sap/opu/odata/sap/"
_JSON = "application/json; charset=utf-8"


# --- URL parsing ------------------------------------------------------------------------------


def split_path(path: str) -> list[str]:
    """Split a resource path on ``/`` outside quoted literals."""
    segments, current, quoted = [], "", False
    for char in path:
        if char == "'":
            quoted = not quoted
        if char == "/" and not quoted:
            segments.append(current)
            current = ""
        else:
            current += char
    segments.append(current)
    return [s for s in segments if s]


def split_segment(segment: str) -> tuple[str, str | None]:
    if segment.endswith(")") and "(" in segment:
        name, _, rest = segment.partition("(")
        return name, rest[:-1]
    return segment, None


def _split_commas(text: str) -> list[str]:
    parts, current, quoted = [], "", False
    for char in text:
        if char == "'":
            quoted = not quoted
        if char == "," and not quoted:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


def literal_text(raw: str, prop: Property) -> str:
    """The value of a URL literal (``'x'``, ``guid'..'``, ``datetime'..'``, digits)."""
    raw = raw.strip()
    for prefix in ("guid", "datetimeoffset", "datetime", "time"):
        if raw.startswith(prefix + "'") and raw.endswith("'"):
            return raw[len(prefix) + 1 : -1]
    if len(raw) >= 2 and raw[0] == "'" and raw[-1] == "'":
        return raw[1:-1].replace("''", "'")
    if prop.type == "Edm.String":
        raise messages.invalid_key(f"Invalid literal {raw} for {prop.name}: strings are quoted ('...')")
    return raw


def parse_key(etype: EntityType, predicate: str) -> dict[str, str]:
    parts = [p for p in _split_commas(predicate) if p.strip()]
    if len(parts) == 1 and "=" not in parts[0].split("'")[0]:
        if len(etype.keys) != 1:
            raise messages.invalid_key(f"Key of {etype.name} has {len(etype.keys)} properties")
        prop = etype.prop(etype.keys[0])
        assert prop is not None
        return {prop.name: literal_text(parts[0], prop)}
    key: dict[str, str] = {}
    for part in parts:
        name, _, raw = part.partition("=")
        prop = etype.prop(name.strip())
        if prop is None or prop.name not in etype.keys:
            raise messages.invalid_key(f"'{name}' is not a key property of {etype.name}")
        key[prop.name] = literal_text(raw, prop)
    if set(key) != set(etype.keys):
        raise messages.invalid_key(f"Key of {etype.name} needs {', '.join(etype.keys)}")
    return key


def function_params(function: FunctionImport, query: dict[str, str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for prop in function.parameters:
        raw = query.get(prop.name)
        if raw is None:
            if not prop.nullable:
                raise messages.bad_request(f"Parameter '{prop.name}' of function import {function.name} is missing")
            params[prop.name] = None
            continue
        params[prop.name] = from_wire(prop, literal_text(raw, prop))
    return params


# --- responses --------------------------------------------------------------------------------


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(
        payload, status_code=status, headers={"dataserviceversion": "2.0", **(headers or {})}, media_type=_JSON
    )


def error_response(error: SapError, service: str) -> Response:
    return json_response(error.status, error_body(error, service))


class Gateway:
    def __init__(self, rt: Runtime, handlers: dict[str, ServiceHandler]) -> None:
        self.rt = rt
        self.handlers = handlers
        self.metadata = {name: render_metadata(h.schema) for name, h in handlers.items()}

    # --- the request pipeline ----------------------------------------------------------------

    async def handle(self, request: Request) -> Response:
        entry = {"method": request.method.upper(), "service": request.path_params["service"],
                 "path": request.path_params.get("path", ""), "query": dict(request.query_params), "status": None,
                 "key": await _posted_key(request)}
        self.rt.traffic.append(entry)
        response = await self._handle(request)
        entry["status"] = response.status_code
        return response

    async def _handle(self, request: Request) -> Response:
        service = request.path_params["service"]
        method = request.method.upper()
        faults = self.rt.faults
        decision = faults.before(service)
        if decision.delay_s:
            await asyncio.sleep(decision.delay_s)
        if decision.hang:
            await asyncio.sleep(faults.config.hang_seconds)
            return self._fault_503(service)
        if decision.fail_503:
            return self._fault_503(service)
        handler = self.handlers.get(service)
        if handler is None:
            return error_response(messages.no_service(service), service)
        sessions = self.rt.sessions
        session = sessions.session(request.cookies.get(sessions.cookie_name))
        authorization = request.headers.get("authorization")
        user = sessions.basic_user(authorization) if authorization else (session.user if session else None)
        if user is None:
            return Response(
                "<html><body><h1>Logon failed</h1></body></html>",
                status_code=401,
                media_type="text/html",
                headers={"WWW-Authenticate": f'Basic realm="{sessions.realm}"'},
            )
        if session is not None and session.user != user:
            session = None
        if method in CHANGING_METHODS and not sessions.valid_token(session, request.headers.get("x-csrf-token")):
            return PlainTextResponse(
                "CSRF token validation failed", status_code=403, headers={"x-csrf-token": "Required"}
            )
        fetch = method in ("GET", "HEAD") and request.headers.get("x-csrf-token", "").lower() == "fetch"
        ctx = Context(user=user)
        try:
            if method in CHANGING_METHODS:
                rejection = self.rt.rules.take_rejection(service, method)
                if rejection is not None:
                    raise rejection
            response = await self._dispatch(request, handler, method, ctx)
        except SapError as error:
            response = error_response(error, service)
            ctx.events.clear()
        except Exception:  # an unexpected bug must still answer like a server, not hang up
            log.exception("simulator error on %s %s", method, request.url.path)
            response = error_response(SapError(500, "ZPB/500", "Internal error in the SAP simulator"), service)
            ctx.events.clear()
        if fetch:
            self._attach_token(response, user, session)
        if ctx.messages and response.status_code < 300:
            first, *rest = ctx.messages
            response.headers["sap-message"] = sap_message_header(first.code, first.message, rest, first.severity)
        self.rt.publisher.publish(ctx.events)
        if method in CHANGING_METHODS and response.status_code < 300 and faults.after_commit(service):
            if faults.config.after_commit_mode == "hang":
                await asyncio.sleep(faults.config.hang_seconds)
                return response
            return self._fault_503(service)
        return response

    def _fault_503(self, service: str) -> Response:
        if self.rt.faults.config.error_503_format == "json":
            return error_response(messages.service_unavailable(), service)
        return Response(ICM_503_PAGE, status_code=503, media_type="text/html")

    def _attach_token(self, response: Response, user: str, session: Session | None) -> None:
        sessions = self.rt.sessions
        if session is None:
            session = sessions.open(user)
            response.set_cookie(sessions.cookie_name, session.id, path="/", httponly=True)
            response.set_cookie("sap-usercontext", f"sap-client={self.rt.settings.client}", path="/")
        response.headers["x-csrf-token"] = session.token

    # --- resolution --------------------------------------------------------------------------

    async def _dispatch(self, request: Request, handler: ServiceHandler, method: str, ctx: Context) -> Response:
        schema = handler.schema
        root = f"{request.url.scheme}://{request.url.netloc}{ROOT}{schema.service}/"
        segments = split_path(request.path_params.get("path", ""))
        opts = parse_options(dict(request.query_params))
        if opts.format not in (None, "json"):
            raise messages.invalid_query(f"$format={opts.format} is not supported by the simulator; use json")
        if not segments:
            self._only(method, "GET", "HEAD")
            return json_response(200, {"d": {"EntitySets": [s.name for s in schema.entity_sets]}})
        if segments[0] == "$metadata":
            self._only(method, "GET", "HEAD")
            return Response(
                self.metadata[schema.service], media_type="application/xml", headers={"dataserviceversion": "2.0"}
            )
        if segments[0] == "$batch":
            raise messages.not_implemented("$BATCH")
        name, predicate = split_segment(segments[0])
        function = schema.function(name)
        if function is not None and predicate is None and len(segments) == 1:
            self._only(method, function.http_method)
            return self._function(request, handler, function, ctx, root)
        if schema.entity_set(name) is None:
            raise messages.not_found(name)
        if predicate is None:
            if segments[1:] == ["$count"]:
                self._only(method, "GET")
                return PlainTextResponse(
                    str(apply(handler.entities(name), handler.etype(name), QueryOptions(filter=opts.filter))[1])
                )
            if len(segments) > 1:
                raise messages.not_found(segments[1])
            if method == "POST":
                return self._create(handler, name, await self._json_body(request), ctx, root)
            self._only(method, "GET")
            return self._page(handler, name, handler.entities(name), opts, root)
        etype = handler.etype(name)
        key = parse_key(etype, predicate)
        if len(segments) == 1 and method in ("PATCH", "MERGE", "PUT"):
            handler.update(name, key, await self._json_body(request), ctx, request.headers.get("if-match"))
            return Response(status_code=204, headers={"dataserviceversion": "2.0"})
        if len(segments) == 1 and method == "DELETE":
            raise messages.not_implemented(f"{name.upper()}_DELETE_ENTITY")
        self._only(method, "GET")
        entity = handler.lookup(name, key)
        if entity is None:
            raise messages.not_found(etype.name)
        if len(segments) == 1:
            etag = etag_of(etype, entity)
            headers = {"ETag": etag} if etag is not None else {}
            return json_response(200, {"d": self._render(handler, name, etype, entity, opts, root)}, headers)
        return self._navigation(handler, name, entity, segments[1:], opts, root)

    def _function(
        self, request: Request, handler: ServiceHandler, function: FunctionImport, ctx: Context, root: str
    ) -> Response:
        params = function_params(function, dict(request.query_params))
        result = handler.call(function, params, ctx, request.headers.get("if-match"))
        if result.set_name:
            etype = handler.etype(result.set_name)
            entity = serialize(handler.schema, etype, result.value, root, set_name=result.set_name)
            return json_response(200, {"d": entity})
        value = serialize_complex(handler.schema, function.return_type, result.value)
        return json_response(200, {"d": {function.name: value}})

    def _create(self, handler: ServiceHandler, name: str, body: Any, ctx: Context, root: str) -> Response:
        created = handler.create(name, body, ctx)
        etype = handler.etype(created.set_name)
        expanded = {
            nav: self._expand_value(handler, created.set_name, etype, created.entity, [nav], root)
            for nav in created.expand
        }
        payload = serialize(handler.schema, etype, created.entity, root, set_name=created.set_name, expanded=expanded)
        headers = {"Location": payload["__metadata"]["uri"]}
        if "etag" in payload["__metadata"]:
            headers["ETag"] = payload["__metadata"]["etag"]
        return json_response(201, {"d": payload}, headers)

    def _page(
        self, handler: ServiceHandler, set_name: str, rows: list[Entity], opts: QueryOptions, root: str
    ) -> Response:
        etype = handler.etype(set_name)
        rows, count = apply(rows, etype, opts)
        page: dict[str, Any] = {"results": [self._render(handler, set_name, etype, r, opts, root) for r in rows]}
        if opts.inlinecount:
            page = {"__count": str(count), **page}
        return json_response(200, {"d": page})

    def _navigation(
        self, handler: ServiceHandler, set_name: str, entity: Entity, rest: list[str], opts: QueryOptions, root: str
    ) -> Response:
        schema = handler.schema
        nav = handler.etype(set_name).nav(rest[0])
        if nav is None or len(rest) > 2 or (len(rest) == 2 and (rest[1] != "$count" or not nav.to_many)):
            raise messages.not_found(rest[-1])
        target_set = schema.set_for_type(nav.target).name
        value = handler.navigate(set_name, entity, nav.name)
        if nav.to_many:
            rows = value if isinstance(value, list) else []
            if len(rest) == 2:
                return PlainTextResponse(str(apply(rows, handler.etype(target_set), opts)[1]))
            return self._page(handler, target_set, rows, opts, root)
        if not isinstance(value, dict):
            raise messages.not_found(nav.target)
        target_type = schema.entity_type(nav.target)
        return json_response(200, {"d": self._render(handler, target_set, target_type, value, opts, root)})

    @staticmethod
    def _only(method: str, *allowed: str) -> None:
        if method not in allowed:
            raise SapError(405, "ZPB/010", f"Method {method} is not allowed for this resource")

    @staticmethod
    async def _json_body(request: Request) -> Any:
        raw = await request.body()
        try:
            return json.loads(raw or b"null")
        except json.JSONDecodeError as exc:
            raise messages.bad_request(f"The request body is not valid JSON: {exc.msg}") from exc

    def _render(
        self, handler: ServiceHandler, set_name: str, etype: EntityType, entity: Entity, opts: QueryOptions, root: str
    ) -> dict[str, Any]:
        groups: dict[str, list[list[str]]] = {}
        for path in opts.expand:
            if etype.nav(path[0]) is None:
                raise messages.invalid_query(f"Property {path[0]} not found in type {etype.name}")
            groups.setdefault(path[0], []).append(path[1:])
        expanded = {
            nav: self._expand_value(handler, set_name, etype, entity, [nav], root, [p for p in rest if p])
            for nav, rest in groups.items()
        }
        select = None if opts.select is None else opts.select | set(expanded)
        if select is not None:
            for name in select:
                if etype.prop(name) is None and etype.nav(name) is None:
                    raise messages.invalid_query(f"Property {name} not found in type {etype.name}")
        return serialize(handler.schema, etype, entity, root, set_name=set_name, select=select, expanded=expanded)

    def _expand_value(
        self,
        handler: ServiceHandler,
        set_name: str,
        etype: EntityType,
        entity: Entity,
        path: list[str],
        root: str,
        deeper: list[list[str]] | None = None,
    ) -> Any:
        schema: Schema = handler.schema
        nav = etype.nav(path[0])
        assert nav is not None
        target_set = schema.set_for_type(nav.target).name
        target_type = schema.entity_type(nav.target)
        sub_opts = QueryOptions(expand=deeper or [])
        value = handler.navigate(set_name, entity, nav.name)
        if nav.to_many:
            rows = value if isinstance(value, list) else []
            return {"results": [self._render(handler, target_set, target_type, r, sub_opts, root) for r in rows]}
        if not isinstance(value, dict):
            return None
        return self._render(handler, target_set, target_type, value, sub_opts, root)


# The fields a posting carries its external key in (what a client looks it up by before posting again).
_KEY_FIELDS = {
    "ProdnOrdConf2": ("ExternalSystemConfirmation",),
    "A_MaterialDocumentHeader": ("ReferenceDocument", "MaterialDocumentHeaderText"),
    "MaintenanceNotification": ("MaintNotifExtReferenceNumber",),
}


async def _posted_key(request: Request) -> str | None:
    """For the traffic log: the external key of a POST that creates a posting (None for anything else)."""
    fields = _KEY_FIELDS.get(request.path_params.get("path", ""))
    if request.method.upper() != "POST" or fields is None:
        return None
    try:
        body = json.loads(await request.body())
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    key = "".join(str(body.get(f) or "") for f in fields)
    return key or None
