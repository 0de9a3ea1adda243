"""The Odoo stand-in as an ASGI application (imports nothing of plantbridge but the simulators' base).

``create_app(db_path, version="19.0")`` serves ``/xmlrpc/2/common|object`` (and legacy ``/xmlrpc/``),
``/jsonrpc``, for 19.0 ``POST /json/2/<model>/<method>`` and ``/web/version``/``/json/version``; the
automation rule "Send Webhook Notification" on MO confirmation (``webhook_url``: POST after commit,
1 s timeout, no retry); fault injection and the admin API under ``/admin`` (see ``admin.py``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI, Request, Response

from plantbridge_devtools.simulators.common.state import SqliteState
from plantbridge_devtools.simulators.odoo.admin import build_admin, seed
from plantbridge_devtools.simulators.odoo.faults import OdooFaults
from plantbridge_devtools.simulators.odoo.orm import Env
from plantbridge_devtools.simulators.odoo.rpc import Auth, Protocols
from plantbridge_devtools.simulators.odoo.service import Service

log = logging.getLogger("odoo-simulator")
VERSIONS = ("17.0", "18.0", "19.0")
DEFAULT_KEY = "0123456789abcdef0123456789abcdef01234567"
WEBHOOK_FIELDS = ["name", "origin", "product_id", "product_qty", "state", "write_date"]


class Webhook:
    """Fire-and-forget POST of the automation rule's payload (1 s timeout, failures only logged)."""

    def __init__(self, state: SqliteState, version: str) -> None:
        self.state = state
        self.version = version
        self.sent: list[dict[str, Any]] = []

    def send(self, mo_ids: list[int]) -> None:
        url = self.state.get_setting("webhook_url")
        if not url or not mo_ids or self.state.get_setting("webhook_paused", False):
            return
        env = Env(self.state, self.version)
        for mo_id in mo_ids:
            [row] = env.read("mrp.production", [mo_id], WEBHOOK_FIELDS, load=None)
            payload = {"_model": "mrp.production", "_id": mo_id, "_action": "Send Webhook Notification(#12)", **row}
            body = json.dumps(payload, sort_keys=True, default=str)
            threading.Thread(target=self._post, args=(str(url), body), daemon=True).start()

    def _post(self, url: str, body: str) -> None:
        try:
            httpx.post(url, content=body, headers={"Content-Type": "application/json"}, timeout=1.0)
            self.sent.append({"url": _origin(url), "ok": True})
        except httpx.HTTPError as err:  # the URL carries the receiver's token: only its origin is logged
            log.warning("webhook to %s failed: %s", _origin(url), type(err).__name__)
            self.sent.append({"url": _origin(url), "ok": False})


def _origin(url: str) -> str:
    parts = httpx.URL(url)
    return f"{parts.scheme}://{parts.netloc.decode()}/..."


def create_app(
    db_path: str, *, version: str = "19.0", database: str = "odoo", login: str = "admin", password: str = "admin",
    api_keys: list[str] | None = None, webhook_url: str | None = None,
) -> FastAPI:
    if version not in VERSIONS:
        raise ValueError(f"version {version!r}: play one of {', '.join(VERSIONS)}")
    state = SqliteState(db_path)
    service = Service(state, version)
    auth = Auth(database, {login: (2, password)}, {k: 2 for k in (api_keys or [DEFAULT_KEY])})
    protocols = Protocols(service, auth)
    faults = OdooFaults()
    webhook = Webhook(state, version)
    if not state.all("res.users"):
        seed(state, version)
    if webhook_url is not None:
        state.set_setting("webhook_url", webhook_url)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        state.close()

    app = FastAPI(title=f"plantbridge Odoo {version} simulator", lifespan=lifespan)
    app.state.odoo = {"state": state, "service": service, "faults": faults, "webhook": webhook, "version": version}
    app.include_router(build_admin(state, service, faults, webhook, version))

    async def guarded(request: Request, model: str, run: Any, render: Any) -> Any:
        decision = faults.before(model)
        if decision.fail_5xx:
            return Response("<html><body><h1>502 Bad Gateway</h1></body></html>", 502, media_type="text/html")
        if decision.hang:
            await asyncio.sleep(faults.config.hang_seconds)
            return Response("<html><body><h1>504 Gateway Time-out</h1></body></html>", 504, media_type="text/html")
        if decision.lock:
            return render(faults.lock_error(version))
        body = await request.body()
        answer, mo_ids = await asyncio.to_thread(run, body)
        webhook.send(mo_ids)
        if faults.after_commit(model):
            if faults.config.lost_mode == "hang":
                await asyncio.sleep(faults.config.hang_seconds)
            return Response("<html><body><h1>502 Bad Gateway</h1></body></html>", 502, media_type="text/html")
        return render(answer)

    def xml_response(payload: str) -> Response:
        return Response(payload, 200, media_type="text/xml")

    @app.post("/xmlrpc/2/{service_name}")
    @app.post("/xmlrpc/{service_name}")
    async def xmlrpc_endpoint(service_name: str, request: Request) -> Any:
        def run(body: bytes) -> tuple[str, list[int]]:
            return protocols.xmlrpc(service_name, body)

        def render(answer: Any) -> Response:
            if isinstance(answer, Exception):
                import xmlrpc.client
                text = f"{faults.lock_name(version)}: {answer}"
                return xml_response(xmlrpc.client.dumps(xmlrpc.client.Fault(1, text), methodresponse=True))
            return xml_response(answer)

        return await guarded(request, service_name, run, render)

    @app.post("/jsonrpc")
    async def jsonrpc_endpoint(request: Request) -> Any:
        def render(answer: Any) -> Response:
            if isinstance(answer, Exception):
                data = {"name": faults.lock_name(version), "message": str(answer), "arguments": [str(answer)],
                        "context": {}, "debug": str(answer)}
                answer = {"jsonrpc": "2.0", "id": None, "error": {
                    "code": 0 if version == "19.0" else 200, "message": "Odoo Server Error", "data": data}}
            return Response(json.dumps(answer, default=str), 200, media_type="application/json")

        return await guarded(request, "jsonrpc", protocols.jsonrpc, render)

    if version == "19.0":
        @app.post("/json/2/{model}/{method}")
        async def json2_endpoint(model: str, method: str, request: Request) -> Any:
            headers = {k.lower(): v for k, v in request.headers.items()}

            def run(body: bytes) -> tuple[tuple[int, Any], list[int]]:
                status, result, mo_ids = protocols.json2(model, method, headers, body)
                return (status, result), mo_ids

            def render(answer: Any) -> Response:
                if isinstance(answer, Exception):
                    body = {"name": faults.lock_name(version), "message": str(answer), "arguments": [str(answer)],
                            "context": {}, "debug": ""}
                    return Response(json.dumps(body), 409, media_type="application/json")
                status, result = answer
                extra = {"WWW-Authenticate": "bearer"} if status == 401 else None
                return Response(json.dumps(result, default=str), status, media_type="application/json",
                                headers=extra)

            return await guarded(request, model, run, render)

        @app.get("/web/version")
        @app.get("/json/version")
        async def web_version() -> dict[str, Any]:
            return {"version_info": [19, 0, 0, "final", 0, ""], "version": "19.0"}

    return app
