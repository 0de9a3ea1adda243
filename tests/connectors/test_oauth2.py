"""OAuth 2.0 client credentials (SAP S/4HANA Cloud communication arrangements): the token is
fetched with the client's id and secret, reused until shortly before it expires, and fetched again
on a 401. A small token endpoint and API served over real HTTP stand in for SAP's (mocked: BTP's
XSUAA cannot run here)."""

from __future__ import annotations

import asyncio
import base64
import itertools
from urllib.parse import parse_qs

import httpx
import pytest
from fastapi import FastAPI, Header, HTTPException, Request

from plantbridge.canonical.plant_config import PlantConfig
from plantbridge.connectors.errors import TransientError
from plantbridge.connectors.oauth2 import ClientCredentials
from tests.support import serve_app


def token_server(lifetime: int) -> tuple[FastAPI, dict[str, object]]:
    app = FastAPI()
    seen: dict[str, object] = {"tokens": [], "revoked": set()}
    numbers = itertools.count(1)

    @app.post("/oauth/token")
    async def token(request: Request, authorization: str = Header("")) -> dict[str, object]:
        grant_type = parse_qs((await request.body()).decode()).get("grant_type", [""])[0]
        expected = "Basic " + base64.b64encode(b"pb-client:s3cret").decode()
        if grant_type != "client_credentials" or authorization != expected:
            raise HTTPException(401)
        value = f"tok-{next(numbers)}"
        seen["tokens"].append(value)  # type: ignore[attr-defined]
        return {"access_token": value, "token_type": "bearer", "expires_in": lifetime}

    @app.get("/api/orders")
    async def orders(authorization: str = Header("")) -> dict[str, str]:
        token = authorization.removeprefix("Bearer ")
        if token not in seen["tokens"] or token in seen["revoked"]:  # type: ignore[operator]
            raise HTTPException(401)
        return {"token": token}

    return app, seen


async def test_token_cached_until_expiry_and_renewed_on_401() -> None:
    app, seen = token_server(lifetime=3600)
    served = await serve_app(app)
    try:
        auth = ClientCredentials(f"{served.url}/oauth/token", "pb-client", "s3cret")
        async with httpx.AsyncClient(base_url=served.url, auth=auth) as http:
            assert (await http.get("/api/orders")).json() == {"token": "tok-1"}
            assert (await http.get("/api/orders")).json() == {"token": "tok-1"}  # cached
            assert auth.fetched == 1
            seen["revoked"].add("tok-1")  # type: ignore[attr-defined]
            assert (await http.get("/api/orders")).json() == {"token": "tok-2"}  # 401 -> a new token
        await auth.aclose()
        # A token about to expire (within the margin) is renewed before use.
        short, _ = token_server(lifetime=1)
        served_short = await serve_app(short)
        auth = ClientCredentials(f"{served_short.url}/oauth/token", "pb-client", "s3cret")
        async with httpx.AsyncClient(base_url=served_short.url, auth=auth) as http:
            await http.get("/api/orders")
            await asyncio.sleep(1.1)
            await http.get("/api/orders")
        assert auth.fetched == 2
        await auth.aclose()
        await served_short.stop()
        # A wrong secret: transient (the posting waits, the SLA alerts), the error names no secret.
        wrong = ClientCredentials(f"{served.url}/oauth/token", "pb-client", "nope")
        with pytest.raises(TransientError, match="refused client pb-client") as err:
            await wrong.token()
        assert "nope" not in str(err.value)
        await wrong.aclose()
    finally:
        await served.stop()


def test_plant_file_takes_oauth2_instead_of_a_password() -> None:
    cfg = PlantConfig.model_validate({"plant": "1000", "erp": {
        "kind": "sap_odata", "url": "https://my-s4.example", "oauth2": {
            "token_url": "https://auth.example/oauth/token", "client_id": "pb", "client_secret_env": "PB_SECRET"}}})
    assert cfg.erp.oauth2 is not None and cfg.erp.password_env is None
