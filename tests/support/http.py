"""A real HTTP transport that records each exchange and can lose an answer after the server acted."""

from __future__ import annotations

from typing import NamedTuple

import httpx


class Call(NamedTuple):
    method: str
    path: str
    status: int | None  # None: no answer reached the client (lost or failed)


class Recorder(httpx.AsyncBaseTransport):
    """httpx's own transport underneath; `calls` keeps (method, path, status) of every request.

    `lose_next = (method, path)`: the next matching request reaches the server and is processed, then
    its answer is dropped (ReadTimeout), as when the network fails after the server committed."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.calls: list[Call] = []
        self.lose_next: tuple[str, str] | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        key = (request.method, request.url.path)
        try:
            response = await self.inner.handle_async_request(request)
        except Exception:
            self.calls.append(Call(*key, None))
            raise
        if self.lose_next == key:
            self.lose_next = None
            await response.aread()
            self.calls.append(Call(*key, None))
            raise httpx.ReadTimeout("answer lost", request=request)
        self.calls.append(Call(*key, response.status_code))
        return response

    def posts(self) -> list[str]:
        """Paths of the POSTs sent, answered or not."""
        return [call.path for call in self.calls if call.method == "POST"]

    async def aclose(self) -> None:
        await self.inner.aclose()
