"""`plantbridge codec-server`: Temporal's codec server protocol over the payload codec, so the
Temporal UI (and `temporal` CLI) show decoded payloads to authorised people only.

Protocol (as the UI speaks it): `POST {endpoint}/decode` and `POST {endpoint}/encode` with the
JSON form of `temporal.api.common.v1.Payloads` (`{"payloads": [{"metadata": {...}, "data": "<b64>"}]}`),
an `X-Namespace` header, and, when the UI is set to pass its access token, `Authorization: Bearer`.

Who may decode: a caller with a **supervisor** API key from the gateway's store
(`Authorization: Bearer pbk_...`), or a request under the per-deployment path secret
(`{endpoint}/<secret>/decode`) when one is configured: that is how a developer's local UI, which
cannot send a key, is let in (the dev stack gives the UI the endpoint with the secret; the plain
endpoint still answers 401). Everyone else: 401. CORS allows only the configured UI origins.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Sequence

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payloads

from plantbridge.security.codec import CodecError, EncryptionCodec
from plantbridge.store.api_keys import ApiKeys

log = logging.getLogger("plantbridge.codec")

DEFAULT_PORT = 8107
BODY_LIMIT = 8 * 1024 * 1024
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="plantbridge-codec"'}


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def create_codec_app(codec: EncryptionCodec, keys: ApiKeys, *, ui_origins: Sequence[str] = (),
                     path_secret: str | None = None) -> FastAPI:
    """The codec server app. `ui_origins`: the Temporal UI's origins (CORS); `path_secret`: see module doc."""
    app = FastAPI(title="plantbridge codec server", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(CORSMiddleware, allow_origins=list(ui_origins), allow_credentials=True,
                       allow_methods=["POST", "OPTIONS"], allow_headers=["*"], max_age=600)

    async def authorised(request: Request, secret: str | None) -> JSONResponse | None:
        if secret is not None:
            if path_secret and hmac.compare_digest(secret.encode(), path_secret.encode()):
                return None
            return _error(404, "not_found", "no such endpoint")
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _error(401, "unauthenticated", "send a supervisor API key as 'Authorization: Bearer <key>'",
                          _CHALLENGE)
        caller = await keys.authenticate(token.strip())
        if caller is None:
            return _error(401, "invalid_key", "the API key is unknown or revoked", _CHALLENGE)
        if caller.role != "supervisor":
            return _error(403, "forbidden_role", f"decoding payloads needs a supervisor key, not {caller.role!r}")
        return None

    async def run(request: Request, op: str, secret: str | None = None) -> Response:
        denied = await authorised(request, secret)
        if denied is not None:
            return denied
        body = await request.body()
        if len(body) > BODY_LIMIT:
            return _error(413, "too_large", f"payloads over {BODY_LIMIT} bytes")
        try:
            payloads = json_format.Parse(body, Payloads(), ignore_unknown_fields=True)
        except (json_format.ParseError, DecodeError, UnicodeDecodeError) as err:
            return _error(400, "invalid_payloads", f"expected {{'payloads': [...]}}: {str(err)[:200]}")
        try:
            out = await (codec.encode(payloads.payloads) if op == "encode" else codec.decode(payloads.payloads))
        except CodecError as err:
            return _error(422, "undecodable", str(err))
        log.info("codec %s: %d payloads for %s (namespace %s)", op, len(out),
                 "path secret" if secret else "supervisor key", request.headers.get("x-namespace", "?"))
        return Response(json_format.MessageToJson(Payloads(payloads=out)), media_type="application/json")

    @app.post("/encode")
    async def encode(request: Request) -> Response:
        return await run(request, "encode")

    @app.post("/decode")
    async def decode(request: Request) -> Response:
        return await run(request, "decode")

    @app.post("/{secret}/encode")
    async def encode_secret(secret: str, request: Request) -> Response:
        return await run(request, "encode", secret)

    @app.post("/{secret}/decode")
    async def decode_secret(secret: str, request: Request) -> Response:
        return await run(request, "decode", secret)

    @app.get("/healthz")
    async def healthz() -> dict[str, object]:
        return {"status": "ok"}

    return app


async def serve(codec: EncryptionCodec, store_url: str, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                ui_origins: Sequence[str] = (), path_secret: str | None = None) -> None:
    """Serve until interrupted."""
    import uvicorn

    from plantbridge.store.db import Database

    db = await Database(store_url).init()
    app = create_codec_app(codec, ApiKeys(db), ui_origins=ui_origins, path_secret=path_secret)
    try:
        await uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="info", access_log=False)).serve()
    finally:
        await db.close()
