"""TLS for connectors: one place that turns a plant file's `ca_bundle` / `client_cert` into an
`ssl.SSLContext`, and refuses clear HTTP to anything but this machine.

- `ca_bundle`: PEM file of the CAs that signed the system's server certificate (a private CA);
  without it, the system's default trust store.
- `client_cert` (+ `client_key` when the key is a separate file): the certificate this connector
  presents when the system requires mutual TLS (SAP's X.509 client certificates, an MES behind an
  mTLS proxy).
- `http://` to a host other than loopback is refused when the plant file is loaded, unless it says
  `allow_insecure: true` (then the worker warns at start): credentials and order data would cross
  the network in clear.
"""

from __future__ import annotations

import ssl
from typing import Any

import httpx

from plantbridge.canonical.plant_config import TlsSettings


def ssl_context(tls: TlsSettings | None) -> ssl.SSLContext:
    """The context to verify the server (and present a client certificate) with."""
    context = ssl.create_default_context(cafile=tls.ca_bundle if tls else None)
    if tls is not None and tls.client_cert:
        context.load_cert_chain(tls.client_cert, tls.client_key)
    return context


def http_client(*, tls: TlsSettings | None = None, **kwargs: Any) -> httpx.AsyncClient:
    """An `httpx.AsyncClient` verifying with the plant's TLS settings (kwargs: base_url, headers...).

    A `transport` given by a test wins (it carries its own TLS or none)."""
    if kwargs.get("transport") is None:
        kwargs.pop("transport", None)
        return httpx.AsyncClient(verify=ssl_context(tls), **kwargs)
    return httpx.AsyncClient(**kwargs)
