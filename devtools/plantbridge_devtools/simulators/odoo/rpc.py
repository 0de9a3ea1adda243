"""Odoo's three external APIs over one :class:`Service`: XML-RPC, JSON-RPC and (19.0) JSON-2.

Error shapes per API (contract §1-§2): XML-RPC faults 1-4 with HTTP 200; JSON-RPC ``error`` envelope
with ``code`` 200 (17/18) or 0 (19) and HTTP 200; JSON-2 HTTP status plus ``{name, message, arguments,
context, debug}``. ``None`` results: XML-RPC Fault 1 "cannot marshal None" (after the commit),
JSON-RPC omits ``result``, JSON-2 answers ``null``.
"""

from __future__ import annotations

import hmac
import json
import re
import traceback
import xmlrpc.client
from typing import Any

from plantbridge_devtools.simulators.odoo.orm import AccessDenied, OdooError, ServerError, UserError
from plantbridge_devtools.simulators.odoo.service import PUBLIC, Service

BEARER = re.compile(r"^bearer\s+(.+)$", re.IGNORECASE)


class Auth:
    """Users and API keys of the simulated database (``login -> (uid, password)``, ``key -> uid``)."""

    def __init__(self, database: str, users: dict[str, tuple[int, str]], api_keys: dict[str, int]) -> None:
        self.database = database
        self.users = users
        self.api_keys = api_keys

    def check(self, db: str, uid: int, secret: str) -> int:
        self.check_db(db)
        for key, key_uid in self.api_keys.items():
            if key_uid == uid and hmac.compare_digest(key.encode(), str(secret).encode()):
                return uid
        for _login, (user_id, password) in self.users.items():
            if user_id == uid and hmac.compare_digest(password.encode(), str(secret).encode()):
                return uid
        raise AccessDenied()

    def check_db(self, db: str) -> None:
        if db != self.database:
            raise ServerError("psycopg2.OperationalError", f'connection to server failed: FATAL:  database "{db}" '
                                                           "does not exist")

    def login(self, db: str, login: str, secret: str) -> int | bool:
        self.check_db(db)
        user = self.users.get(login)
        if user is None:
            return False
        uid = user[0]
        try:
            return self.check(db, uid, secret)
        except AccessDenied:
            return False

    def bearer(self, header: str | None) -> int:
        match = BEARER.match(header or "")
        if not match:
            raise Unauthorized("User not authenticated, use an API Key with a Bearer Authorization header.")
        for key, uid in self.api_keys.items():
            if hmac.compare_digest(key.encode(), match.group(1).strip().encode()):
                return uid
        raise Unauthorized("Invalid apikey")


class Unauthorized(OdooError):
    name, status, fault = "werkzeug.exceptions.Unauthorized", 401, 1


class NotFound(OdooError):
    name, status, fault = "werkzeug.exceptions.NotFound", 404, 1


class Unprocessable(OdooError):
    name, status, fault = "werkzeug.exceptions.UnprocessableEntity", 422, 1


def classify(err: Exception) -> OdooError:
    """Any exception as Odoo would surface it (Python errors become ``builtins.<Class>``)."""
    if isinstance(err, OdooError):
        return err
    return ServerError(f"builtins.{type(err).__name__}", str(err))


def version_info(version: str) -> dict[str, Any]:
    major = int(version.split(".")[0])
    return {"server_version": version, "server_version_info": [major, 0, 0, "final", 0, ""],
            "server_serie": version, "protocol_version": 1}


class Protocols:
    def __init__(self, service: Service, auth: Auth) -> None:
        self.service = service
        self.auth = auth
        self.version = service.version

    # --- the services ---------------------------------------------------------------------

    def common(self, method: str, params: list[Any]) -> Any:
        if method == "version":
            return version_info(self.version)
        if method == "login":
            return self.auth.login(*params[:3])
        if method == "authenticate":
            return self.auth.login(*params[:3])
        if method == "about":
            return "See http://openerp.com"
        raise Exception(f'Method not found: {method}')

    def object(self, method: str, params: list[Any]) -> tuple[Any, list[int]]:
        if method not in ("execute_kw", "execute"):
            raise NameError(f"Method not available {method}")
        db, uid, secret, model, meth, *rest = params
        self.auth.check(db, int(uid), secret)
        args = list(rest[0]) if rest else []
        kwargs = dict(rest[1] or {}) if method == "execute_kw" and len(rest) > 1 else {}
        if method == "execute":
            args, kwargs = list(rest), {}
        return self.service.call(int(uid), model, meth, args, kwargs)

    # --- XML-RPC --------------------------------------------------------------------------

    def xmlrpc(self, service: str, body: bytes) -> tuple[str, list[int]]:
        webhooks: list[int] = []
        try:
            params, method = xmlrpc.client.loads(body)
            if service == "common":
                result = self.common(str(method), list(params))
            elif service == "object":
                result, webhooks = self.object(str(method), list(params))
            else:
                raise Exception(f"No such service {service}")
            if result is None:  # committed, but Odoo marshals with allow_none=False
                raise TypeError("cannot marshal None unless allow_none is enabled")
            return xmlrpc.client.dumps((result,), methodresponse=True, allow_none=False), webhooks
        except Exception as err:
            odoo = classify(err)
            text = odoo.message if odoo.fault in (2, 3, 4) else "".join(
                traceback.format_exception_only(type(err), err)) + f"{odoo.name}: {odoo.message}"
            if isinstance(odoo, AccessDenied):
                text = "Access Denied"
            return xmlrpc.client.dumps(xmlrpc.client.Fault(odoo.fault, text), methodresponse=True), webhooks

    # --- JSON-RPC -------------------------------------------------------------------------

    def error_data(self, odoo: OdooError) -> dict[str, Any]:
        return {"name": odoo.name, "debug": "" if isinstance(odoo, AccessDenied) else
                f"Traceback (most recent call last):\n{odoo.name}: {odoo.message}\n",
                "message": odoo.message, "arguments": [odoo.message], "context": {}}

    def jsonrpc(self, body: bytes) -> tuple[dict[str, Any], list[int]]:
        webhooks: list[int] = []
        req_id = None
        try:
            data = json.loads(body)
            req_id = data.get("id")
            params = data.get("params")
            if not isinstance(params, dict):
                raise UserError("params must be an object")
            service, method, args = params.get("service"), str(params.get("method")), list(params.get("args") or [])
            if service == "common":
                result = self.common(method, args)
            elif service == "object":
                result, webhooks = self.object(method, args)
            else:
                raise Exception(f"No such service {service}")
        except Exception as err:
            odoo = classify(err)
            code = 0 if self.version == "19.0" else 200
            return {"jsonrpc": "2.0", "id": req_id, "error": {"code": code, "message": "Odoo Server Error",
                                                              "data": self.error_data(odoo)}}, webhooks
        answer: dict[str, Any] = {"jsonrpc": "2.0", "id": req_id}
        if result is not None:  # Odoo omits `result` when the value is None
            answer["result"] = result
        return answer, webhooks

    # --- JSON-2 (19.0) --------------------------------------------------------------------

    def json2(self, model: str, method: str, headers: dict[str, str], body: bytes) -> tuple[int, Any, list[int]]:
        try:
            uid = self.auth.bearer(headers.get("authorization"))
            db = headers.get("x-odoo-database")
            if db is not None:
                self.auth.check_db(db)
            try:
                params = json.loads(body or b"{}")
            except ValueError as err:
                raise Unprocessable(f"Invalid JSON body: {err}") from None
            if not isinstance(params, dict):
                raise Unprocessable("The body must be a JSON object of named arguments.")
            ids = params.pop("ids", None)
            context = params.pop("context", None)
            kwargs: dict[str, Any] = {**params, "context": context or {}}
            args: list[Any] = []
            if method in ("create", "search", "search_read", "search_count", "fields_get", "load",
                          "check_object_reference"):
                if ids:
                    raise Unprocessable(f"{model}.{method}() is a model method: it takes no ids")
            else:
                args = [list(ids or [])]
            if method not in ("create", "write", "read", "search", "search_read", "search_count", "fields_get",
                              "load", "check_object_reference"):
                if method not in PUBLIC.get(model, set()) and not method.startswith("_"):
                    raise NotFound(f"The method '{model}.{method}' does not exist")
                if set(kwargs) - {"context"}:
                    extra = sorted(set(kwargs) - {"context"})
                    raise Unprocessable(f"{model}.{method}() got unexpected arguments {extra}")
            result, webhooks = self.service.call(uid, model, method, args, kwargs)
            return 200, result, webhooks
        except Exception as err:
            odoo = classify(err)
            if odoo.name == "odoo.exceptions.UserError" and "doesn't exist" in odoo.message:
                odoo = NotFound(odoo.message)
            if odoo.name.startswith("builtins.AttributeError"):
                odoo = NotFound(odoo.message)
            body_out = {"name": odoo.name, "message": odoo.message, "arguments": [odoo.message], "context": {},
                        "debug": self.error_data(odoo)["debug"]}
            return odoo.status, body_out, []
