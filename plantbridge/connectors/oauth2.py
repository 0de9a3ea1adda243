"""OAuth 2.0 client credentials for connectors (SAP S/4HANA Cloud communication arrangements).

An `httpx.Auth`: the first request fetches a token from the token URL (client id + secret, HTTP
Basic as RFC 6749 §2.3.1 prefers, `grant_type=client_credentials`), later ones reuse it until shortly
before it expires; a 401 drops it and the request is sent once more with a fresh one. A token
endpoint that refuses the client is a configuration problem (`BusinessRejection`-free: it raises a
`TransientError` with code OAUTH so the posting waits and the SLA alerts).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator

import httpx

from plantbridge.connectors.errors import TransientError

# Renew this long before the token's stated expiry.
EXPIRY_MARGIN_S = 30.0


class ClientCredentials(httpx.Auth):
    def __init__(self, token_url: str, client_id: str, client_secret: str, *, scope: str | None = None,
                 system: str = "erp", http: httpx.AsyncClient | None = None) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self._secret = client_secret
        self.scope = scope
        self.system = system
        self._http = http or httpx.AsyncClient(timeout=30)
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()
        self.fetched = 0  # how many tokens were fetched (tests, metrics)

    async def token(self, *, refresh: bool = False) -> str:
        async with self._lock:
            if refresh or self._token is None or time.monotonic() >= self._expires:
                data = {"grant_type": "client_credentials", **({"scope": self.scope} if self.scope else {})}
                try:
                    response = await self._http.post(self.token_url, data=data,
                                                     auth=httpx.BasicAuth(self.client_id, self._secret))
                except httpx.HTTPError as exc:
                    raise TransientError(f"OAuth2 token endpoint: {type(exc).__name__}", system=self.system,
                                         code="OAUTH/NETWORK") from exc
                if response.status_code != 200:
                    raise TransientError(f"OAuth2 token endpoint refused client {self.client_id} "
                                         f"({response.status_code})", system=self.system, code="OAUTH")
                body = response.json()
                self._token = str(body["access_token"])
                self._expires = time.monotonic() + max(float(body.get("expires_in", 300)) - EXPIRY_MARGIN_S, 1.0)
                self.fetched += 1
            return self._token

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        request.headers["Authorization"] = f"Bearer {await self.token()}"
        response = yield request
        if response.status_code == 401:
            request.headers["Authorization"] = f"Bearer {await self.token(refresh=True)}"
            yield request

    async def aclose(self) -> None:
        await self._http.aclose()
