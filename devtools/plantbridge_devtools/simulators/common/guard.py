"""ASGI middleware in front of a simulator's business API: API-key check and fault injection.

Paths under ``open_prefixes`` (``/admin``, the OpenAPI docs) pass untouched. Every other request
first gets the configured fault (latency, then possibly a 503 in the system's error style), then
must carry one of the accepted keys in the API-key header (``X-API-Key`` unless configured
otherwise), else it is answered 401.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from plantbridge_devtools.simulators.common.errors import ErrorStyle, SimError
from plantbridge_devtools.simulators.common.faults import FaultInjector

OPEN_PREFIXES = ("/admin", "/docs", "/redoc", "/openapi.json")


class Guard:
    def __init__(
        self,
        app: ASGIApp,
        *,
        api_keys: Iterable[str],
        header: str,
        faults: FaultInjector,
        style: ErrorStyle,
        open_prefixes: tuple[str, ...] = OPEN_PREFIXES,
    ) -> None:
        self.app = app
        self.api_keys = [k for k in api_keys if k]
        self.header = header.lower().encode("latin-1")
        self.faults = faults
        self.style = style
        self.open_prefixes = open_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or path.startswith(self.open_prefixes):
            await self.app(scope, receive, send)
            return
        decision = self.faults.decide(path)
        if decision.delay_s:
            await asyncio.sleep(decision.delay_s)
        if decision.fail_503:
            await self._answer(send, SimError(503, self.style.unavailable, "service temporarily unavailable"),
                               [(b"retry-after", b"1")])
            return
        if self.api_keys:
            given = b""
            for name, value in scope.get("headers", []):
                if name.lower() == self.header:
                    given = value
                    break
            if not any(hmac.compare_digest(given, k.encode()) for k in self.api_keys):
                message = "missing API key" if not given else "invalid API key"
                await self._answer(send, SimError(401, self.style.unauthorized, message))
                return
        await self.app(scope, receive, send)

    async def _answer(self, send: Send, error: SimError, extra: list[tuple[bytes, bytes]] | None = None) -> None:
        body = json.dumps(self.style.render(error)).encode()
        headers = [
            (b"content-type", self.style.media_type.encode()),
            (b"content-length", str(len(body)).encode()),
            *(extra or []),
        ]
        await send({"type": "http.response.start", "status": error.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
