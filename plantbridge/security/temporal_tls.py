"""TLS, mutual TLS and an API key for the Temporal client (self-hosted with TLS, or Temporal Cloud).

From the environment (every process that connects: worker, gateway, CLI, bench):

- `PLANTBRIDGE_TEMPORAL_TLS`: `1` to speak TLS with the system's trust store (Temporal Cloud);
  implied by any of the following.
- `PLANTBRIDGE_TEMPORAL_TLS_CA`: PEM file of the CA of a private Temporal frontend's certificate.
- `PLANTBRIDGE_TEMPORAL_TLS_CERT` + `PLANTBRIDGE_TEMPORAL_TLS_KEY`: the client certificate and key
  (mutual TLS, Temporal Cloud's mTLS namespaces).
- `PLANTBRIDGE_TEMPORAL_TLS_SERVER_NAME`: the name to verify the server's certificate for, when it
  differs from the address' host.
- `PLANTBRIDGE_TEMPORAL_API_KEY` (or `_API_KEY_FILE`): a Temporal Cloud API key (sent as a bearer
  token; implies TLS).
"""

from __future__ import annotations

import os
from pathlib import Path

from temporalio.service import TLSConfig

ENV = "PLANTBRIDGE_TEMPORAL_"


class TemporalTlsError(ValueError):
    """The Temporal TLS settings are incomplete or unreadable."""


def _read(var: str) -> bytes | None:
    path = os.environ.get(ENV + var)
    if not path:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise TemporalTlsError(f"{ENV}{var}: cannot read {path} ({err.strerror})") from None


def api_key_from_env() -> str | None:
    key = os.environ.get(ENV + "API_KEY")
    if key:
        return key
    data = _read("API_KEY_FILE")
    return data.decode().strip() if data else None


def tls_from_env() -> TLSConfig | bool:
    """The client's TLS: a `TLSConfig`, True (system roots) or False (plain, the dev server)."""
    ca, cert, key = _read("TLS_CA"), _read("TLS_CERT"), _read("TLS_KEY")
    if bool(cert) != bool(key):
        raise TemporalTlsError(f"{ENV}TLS_CERT and {ENV}TLS_KEY go together (mutual TLS)")
    server_name = os.environ.get(ENV + "TLS_SERVER_NAME") or None
    if ca or cert or server_name:
        return TLSConfig(server_root_ca_cert=ca, client_cert=cert, client_private_key=key, domain=server_name)
    wanted = os.environ.get(ENV + "TLS", "").lower() in ("1", "true", "yes", "on")
    return wanted or api_key_from_env() is not None
