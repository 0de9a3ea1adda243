"""`plantbridge codec-server`: Temporal's codec server protocol over the payload codec, so the
Temporal UI (and `temporal` CLI) show decoded payloads to authorised people only.

Protocol (as the UI speaks it): `POST {endpoint}/decode` and `POST {endpoint}/encode` with the
JSON form of `temporal.api.common.v1.Payloads` (`{"payloads": [{"metadata": {...}, "data": "<b64>"}]}`),
an `X-Namespace` header, and, when the UI is set to pass its access token, `Authorization: Bearer`.

Who may decode: a caller with a **supervisor** API key from the gateway's store
(`Authorization: Bearer pbk_...`); with OIDC configured (security/oidc.py), a person signed in to the
Temporal UI whose token (`Authorization: Bearer <JWT>`, the UI's `TEMPORAL_CODEC_PASS_ACCESS_TOKEN`)
is valid and names a supervisor group (invalid: 401; valid without the group: 403); or a request
under the per-deployment path secret
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
from plantbridge.security.oidc import KeysUnavailable, OidcVerifier, TokenForbidden, TokenInvalid
from plantbridge.store.api_keys import KEY_PREFIX, ApiKeys

log = logging.getLogger("plantbridge.codec")

DEFAULT_PORT = 8107
BODY_LIMIT = 8 * 1024 * 1024
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="plantbridge-codec"'}


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def create_codec_app(codec: EncryptionCodec, keys: ApiKeys, *, ui_origins: Sequence[str] = (),
                     path_secret: str | None = None, oidc: OidcVerifier | None = None) -> FastAPI:
    """The codec server app. `ui_origins`: the Temporal UI's origins (CORS); `path_secret`, `oidc`: see module doc."""
    app = FastAPI(title="plantbridge codec server", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(CORSMiddleware, allow_origins=list(ui_origins), allow_credentials=True,
                       allow_methods=["POST", "OPTIONS"], allow_headers=["*"], max_age=600)

    async def authorised(request: Request, secret: str | None) -> JSONResponse | str:
        """Who is asking (for the log), or the answer refusing them."""
        if secret is not None:
            if path_secret and hmac.compare_digest(secret.encode(), path_secret.encode()):
                return "path secret"
            return _error(404, "not_found", "no such endpoint")
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return _error(401, "unauthenticated", "send a supervisor API key or the UI's OIDC token as "
                          "'Authorization: Bearer <token>'", _CHALLENGE)
        if oidc is not None and not token.startswith(KEY_PREFIX):
            return await _oidc(oidc, token)
        caller = await keys.authenticate(token)
        if caller is None:
            return _error(401, "invalid_key", "the API key is unknown or revoked", _CHALLENGE)
        if caller.role != "supervisor":
            return _error(403, "forbidden_role", f"decoding payloads needs a supervisor key, not {caller.role!r}")
        return "supervisor key"

    async def run(request: Request, op: str, secret: str | None = None) -> Response:
        who = await authorised(request, secret)
        if isinstance(who, JSONResponse):
            return who
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
        log.info("codec %s: %d payloads for %s (namespace %s)", op, len(out), who,
                 request.headers.get("x-namespace", "?"))
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


async def _oidc(oidc: OidcVerifier, token: str) -> JSONResponse | str:
    try:
        identity = await oidc.verify(token)
    except TokenInvalid as err:
        challenge = {"WWW-Authenticate": f'Bearer realm="plantbridge-codec", error="invalid_token", '
                                         f'error_description="{str(err).replace(chr(34), chr(39))}"'}
        return _error(401, "invalid_token", str(err), challenge)
    except TokenForbidden as err:
        return _error(403, "forbidden_role", str(err))
    except KeysUnavailable as err:
        log.error("%s", err)
        return _error(503, "oidc_unavailable", "the identity provider's keys could not be read; try again later",
                      {"Retry-After": "30"})
    return f"oidc:{identity.subject}"


async def serve(codec: EncryptionCodec, store_url: str, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                ui_origins: Sequence[str] = (), path_secret: str | None = None,
                oidc: OidcVerifier | None = None) -> None:
    """Serve until interrupted."""
    import uvicorn

    from plantbridge.store.db import Database

    db = await Database(store_url).init()
    app = create_codec_app(codec, ApiKeys(db), ui_origins=ui_origins, path_secret=path_secret, oidc=oidc)
    try:
        await uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="info", access_log=False)).serve()
    finally:
        await db.close()
