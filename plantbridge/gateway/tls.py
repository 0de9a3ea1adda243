"""HTTPS for the gateway, and the edge agent's client certificate as its identity.

Settings (env `PLANTBRIDGE_*`): `gateway_tls_cert` + `gateway_tls_key` serve HTTPS;
`gateway_tls_client_ca` verifies client certificates signed by that CA (optional at the handshake);
`gateway_tls_client_required` refuses a handshake without one.

uvicorn does not put the peer certificate into the ASGI scope, so `TlsH11Protocol` adds it, as
the ASGI TLS extension names it (`scope["extensions"]["tls"]["client_cert_name"]`, RFC 4514), plus
the subject's common name (`client_cert_cn`). `auth.authenticate` then checks that a certificate's
CN is the API key's name (the edge's identity: certificate `CN=edge-1000-a` goes with the key named
`edge-1000-a`, and so with its plants and kind), and, when client certificates are configured,
that an edge key comes with one.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

from starlette.requests import Request
from uvicorn.protocols.http.h11_impl import H11Protocol


def _subject(cert: dict[str, Any]) -> tuple[str, str | None]:
    parts = [(k, v) for rdn in cert.get("subject", ()) for (k, v) in rdn]
    names = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU", "countryName": "C"}
    rfc4514 = ",".join(f"{names.get(k, k)}={v}" for k, v in reversed(parts))
    cn = next((v for k, v in parts if k == "commonName"), None)
    return rfc4514, cn


class TlsH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, with the verified client certificate's subject in the scope."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        cert = ssl_object.getpeercert() if isinstance(ssl_object, ssl.SSLObject) else None
        if not cert:
            return
        name, cn = _subject(cert)
        inner = self.app

        async def app(scope: Any, receive: Any, send: Any) -> None:
            scope.setdefault("extensions", {})["tls"] = {"client_cert_name": name, "client_cert_cn": cn}
            await inner(scope, receive, send)

        self.app = app


def uvicorn_tls_options(cert: str | None, key: str | None, client_ca: str | None,
                        client_required: bool) -> dict[str, Any]:
    """uvicorn.Config keyword arguments for HTTPS (empty: plain HTTP)."""
    if not cert:
        if client_ca or key:
            raise ValueError("gateway_tls_key / gateway_tls_client_ca need gateway_tls_cert (the server certificate)")
        return {}
    options: dict[str, Any] = {"ssl_certfile": cert, "ssl_keyfile": key, "http": TlsH11Protocol}
    if client_ca:
        options.update(ssl_ca_certs=client_ca,
                       ssl_cert_reqs=ssl.CERT_REQUIRED if client_required else ssl.CERT_OPTIONAL)
    return options


def client_cert_cn(request: Request) -> str | None:
    tls = request.scope.get("extensions", {}).get("tls") or {}
    cn = tls.get("client_cert_cn")
    return str(cn) if cn else None
