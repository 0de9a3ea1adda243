"""Odoo's external API as a transport: JSON-2 (19.0+) or JSON-RPC ``object.execute_kw`` (17/18/19).

Errors are classified once, here (contract §1-§2): ``UserError``/``ValidationError``/``MissingError``
(and Odoo's deterministic Python errors) are business rejections with Odoo's message;
``AccessError``/``AccessDenied`` are rejections naming the missing right; ``LockError``/409,
PostgreSQL serialization/lock failures, 5xx, timeouts and connection errors are transient.
The None hazard: a method returning None has committed; JSON-RPC then omits ``result`` and JSON-2
answers ``null``: both are success (XML-RPC, which faults on None, is not used).
"""

from __future__ import annotations

from typing import Any, Literal

import httpx

from plantbridge.connectors.errors import BusinessRejection, TransientError

SYSTEM = "odoo"
REJECT = ("odoo.exceptions.UserError", "odoo.exceptions.ValidationError", "odoo.exceptions.MissingError",
          "odoo.exceptions.RedirectWarning")
ACCESS = ("odoo.exceptions.AccessError", "odoo.exceptions.AccessDenied")
TRANSIENT_NAMES = ("odoo.exceptions.LockError", "odoo.exceptions.ConcurrencyError", "psycopg2.")
MODEL_METHODS = {"create", "search", "search_read", "search_count", "fields_get", "load", "check_object_reference"}


def short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def classify(name: str, message: str, status: int | None = None) -> BusinessRejection | TransientError:
    """One Odoo error (qualified class name, message, HTTP status for JSON-2) as plantbridge's kind."""
    text = (message or name or "Odoo error").strip()
    if name.startswith(TRANSIENT_NAMES) or status == 409:
        return TransientError(f"Odoo: {text}"[:500], system=SYSTEM, code=short(name or "409"))
    if name in ACCESS:
        return BusinessRejection(f"Odoo refused the access right ({short(name)}): {text} - give the integration "
                                 "user the missing group, then retry"[:1000], system=SYSTEM, code=short(name))
    if name in REJECT or name.startswith(("builtins.", "werkzeug.exceptions.NotFound",
                                          "werkzeug.exceptions.UnprocessableEntity")):
        return BusinessRejection(text[:1000], system=SYSTEM, code=short(name))
    if name == "werkzeug.exceptions.Unauthorized" or status == 401:
        return BusinessRejection(f"Odoo refused the API key: {text}", system=SYSTEM, code="AccessDenied")
    return TransientError(f"Odoo: {name} {text}"[:500], system=SYSTEM, code=short(name) if name else str(status))


class OdooRpc:
    def __init__(self, url: str, *, database: str, login: str, api_key: str, api: Literal["json2", "jsonrpc"],
                 timeout: float = 30.0, http: httpx.AsyncClient | None = None) -> None:
        self.url = url.rstrip("/")
        self.database = database
        self.login = login
        self.api_key = api_key
        self.api = api
        self.http = http or httpx.AsyncClient(timeout=timeout)
        self._uid: int | None = None

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _post(self, path: str, **kw: Any) -> httpx.Response:
        try:
            response = await self.http.post(f"{self.url}{path}", **kw)
        except httpx.TimeoutException as err:
            raise TransientError(f"Odoo did not answer in time ({type(err).__name__})", system=SYSTEM,
                                 code="timeout") from err
        except httpx.TransportError as err:
            raise TransientError(f"Odoo unreachable: {type(err).__name__} {err}"[:300], system=SYSTEM,
                                 code="connection") from err
        if response.status_code >= 500 and "json" not in response.headers.get("content-type", ""):
            raise TransientError(f"Odoo answered HTTP {response.status_code}", system=SYSTEM,
                                 code=str(response.status_code))
        return response

    async def _jsonrpc(self, service: str, method: str, args: list[Any]) -> Any:
        response = await self._post("/jsonrpc", json={"jsonrpc": "2.0", "method": "call", "id": 1, "params": {
            "service": service, "method": method, "args": args}})
        try:
            body = response.json()
        except ValueError as err:
            raise TransientError(f"Odoo answered HTTP {response.status_code} without JSON", system=SYSTEM,
                                 code=str(response.status_code)) from err
        if "error" in body:
            data = body["error"].get("data") or {}
            raise classify(str(data.get("name") or ""), str(data.get("message") or body["error"].get("message")))
        return body.get("result")  # absent = None = committed (the None hazard)

    async def uid(self) -> int:
        if self._uid is None:
            uid = await self._jsonrpc("common", "authenticate", [self.database, self.login, self.api_key, {}])
            if not uid:
                raise BusinessRejection(f"Odoo refused login {self.login!r} with the API key on database "
                                        f"{self.database!r} (AccessDenied)", system=SYSTEM, code="AccessDenied")
            self._uid = int(uid)
        return self._uid

    async def call(self, model: str, method: str, ids: list[int] | None = None, *,
                   context: dict[str, Any] | None = None, **params: Any) -> Any:
        """Call ``model.method`` with named parameters; ``ids`` for record methods."""
        if self.api == "json2":
            body: dict[str, Any] = dict(params)
            if ids is not None:
                body["ids"] = ids
            if context:
                body["context"] = context
            response = await self._post(f"/json/2/{model}/{method}", json=body, headers={
                "Authorization": f"bearer {self.api_key}", "X-Odoo-Database": self.database})
            try:
                data = response.json()
            except ValueError as err:
                raise TransientError(f"Odoo answered HTTP {response.status_code} without JSON", system=SYSTEM,
                                     code=str(response.status_code)) from err
            if response.status_code != 200:
                info = data if isinstance(data, dict) else {}
                raise classify(str(info.get("name") or ""), str(info.get("message") or ""), response.status_code)
            return data
        args: list[Any] = [ids] if ids is not None else []
        kwargs = dict(params)
        if context:
            kwargs["context"] = context
        return await self._jsonrpc("object", "execute_kw", [self.database, await self.uid(), self.api_key, model,
                                                            method, args, kwargs])
