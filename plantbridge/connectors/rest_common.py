"""What the MES, QMS and WMS connectors share: one JSON client per system and the error rules.

`RestClient` owns an `httpx.AsyncClient` (base URL, API-key header, timeout) and turns every
failure into a `TransientError` or a `BusinessRejection`, the one place where plant-system errors
are classified:

==========================================================  =====================================
what the system (or the network) answered                   raised
==========================================================  =====================================
timeout, connection refused/reset, other transport errors   TransientError (code NETWORK)
HTTP 5xx, 429, 408                                          TransientError (the system's code)
HTTP 401 / 403                                              BusinessRejection (credentials)
any other 4xx                                               BusinessRejection (the system's code,
                                                            message and details)
==========================================================  =====================================

The three systems spell errors differently; `parse_error` reads each of them:
MES ``{"errorCode", "message", "details"}``, QMS ``{"error": {"code", "message", "details"}}``,
WMS RFC 7807 ``{"title", "detail", "errors"}``. A caller that knows a 4xx means "already done"
catches the rejection and checks `code` (e.g. the WMS's ``DUPLICATE_REFERENCE``).

Units: `local_unit` maps a canonical UN/ECE unit to the system's own code (see its docstring).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Collection, Mapping
from decimal import Decimal
from types import TracebackType
from typing import Any, ClassVar, Self

import httpx

from plantbridge.canonical.plant_config import PlantConfig, SystemConfig, TlsSettings
from plantbridge.connectors.errors import BusinessRejection, TransientError
from plantbridge.connectors.ports import CommandDispatch
from plantbridge.connectors.tls import http_client

log = logging.getLogger("plantbridge.connectors.rest")

TRANSIENT_STATUS = frozenset({408, 429})


def decimal_text(value: Decimal) -> str:
    """Decimal -> plain decimal string without exponent ("100", "12.5")."""
    text = format(value.normalize(), "f")
    return "0" if text in ("", "-0") else text


def _detail_text(item: Any) -> str:
    if isinstance(item, dict):
        if "field" in item and "message" in item:
            return f"{item['field']}: {item['message']}"
        return ", ".join(f"{k}={v}" for k, v in item.items())
    return str(item)


def parse_error(response: httpx.Response) -> tuple[str | None, str, list[str]]:
    """(code, message, details) of an error answer in any of the three systems' styles."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()[:300]
        return None, text or response.reason_phrase or f"HTTP {response.status_code}", []
    if not isinstance(body, dict):
        return None, str(body)[:300], []
    if isinstance(body.get("error"), dict):  # QMS
        body = body["error"]
    code = body.get("errorCode") or body.get("code") or body.get("title")
    message = body.get("message") or body.get("detail") or response.reason_phrase or ""
    raw = body.get("details", body.get("errors"))
    if raw is None:
        details: list[str] = []
    elif isinstance(raw, list):
        details = [_detail_text(x) for x in raw]
    else:
        details = [_detail_text(raw)]
    return (str(code) if code is not None else None), str(message), details


def rejection_from(system: str, response: httpx.Response, doing: str) -> BusinessRejection | TransientError:
    code, message, details = parse_error(response)
    status = response.status_code
    if status >= 500 or status in TRANSIENT_STATUS:
        retry_after = response.headers.get("retry-after")
        extra = [f"retry-after: {retry_after}"] if retry_after else []
        return TransientError(
            f"{system.upper()} {doing}: HTTP {status} {message}".strip(),
            system=system, code=code or f"HTTP-{status}", details=details + extra,
        )
    if status in (401, 403):
        return BusinessRejection(
            f"{system.upper()} refused the credentials ({message}); check the API key of the plant's "
            f"{system} configuration (api_key_env)",
            system=system, code=code or f"HTTP-{status}", details=details,
        )
    return BusinessRejection(
        f"{system.upper()} {doing}: {message}", system=system, code=code or f"HTTP-{status}", details=details
    )


class RestClient:
    """JSON over HTTP to one plant system, every failure classified."""

    def __init__(
        self,
        system: str,
        url: str,
        *,
        api_key: str,
        timeout: float = 15.0,
        transport: httpx.AsyncBaseTransport | None = None,
        api_key_header: str = "X-API-Key",
        tls: TlsSettings | None = None,
    ) -> None:
        self.system = system
        self._http = http_client(
            tls=tls,
            base_url=url.rstrip("/"),
            headers={api_key_header: api_key, "Accept": "application/json"},
            timeout=timeout,
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> RestClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        doing: str = "",
    ) -> httpx.Response:
        """One request; a 2xx answer is returned, anything else raised as a classified error."""
        doing = doing or f"{method} {path}"
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        try:
            response = await self._http.request(method, path, json=json, params=params, headers=headers)
        except httpx.TimeoutException as exc:
            raise TransientError(f"{self.system.upper()} {doing}: timed out ({type(exc).__name__})",
                                 system=self.system, code="TIMEOUT") from exc
        except httpx.TransportError as exc:
            raise TransientError(f"{self.system.upper()} {doing}: {type(exc).__name__}: {exc}",
                                 system=self.system, code="NETWORK") from exc
        log.info("%s %s %s -> %s", self.system, method, path, response.status_code)
        if response.is_success:
            return response
        raise rejection_from(self.system, response, doing)

    async def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.call(method, path, **kwargs)
        return response.json() if response.content else None


def api_key_for(config: SystemConfig, system: str, default: str) -> str:
    """The API key from the environment variable the plant file names (`api_key_env`); without
    one, `default` (the simulators' dev key). A named but unset variable is a configuration error."""
    if not config.api_key_env:
        return default
    value = os.environ.get(config.api_key_env)
    if not value:
        raise ValueError(f"environment variable {config.api_key_env} (the {system.upper()} API key) is not set")
    return value


def system_url(config: SystemConfig, system: str) -> str:
    if config.kind != "rest" or not config.url:
        raise ValueError(f"the plant's {system} is not configured as kind: rest with a url")
    return config.url


def local_unit(
    unece: str,
    *,
    plant: PlantConfig,
    system: str,
    accepted: Collection[str],
    builtin: Mapping[str, str] | None = None,
) -> str:
    """The system's own unit for a canonical UN/ECE unit.

    1. a local code of the plant file's `xref.units` (local -> UN/ECE, read backwards) that the
       system accepts (several local codes for one UN/ECE unit: the first in file order it accepts);
    2. the connector's built-in table of the product's documented units (`builtin`);
    3. the UN/ECE code itself, when the system accepts it;
    otherwise a BusinessRejection naming the missing cross-reference.
    """
    for local, target in plant.xref.units.items():
        if target == unece and local in accepted:
            return local
    if builtin and unece in builtin:
        return builtin[unece]
    if unece in accepted:
        return unece
    raise BusinessRejection(
        f"no {system.upper()} unit for {unece}: add it to xref.units in the plant file of plant {plant.plant} "
        f"(the {system.upper()} accepts {', '.join(sorted(accepted))})",
        system=system, code="XREF-UNIT", details=[f"xref.units: <{system} unit>: {unece}"],
    )


class RestConnector(CommandDispatch):
    """What the MES, QMS and WMS connectors share: the client, construction from the plant file."""

    SYSTEM: ClassVar[str]
    DEV_KEY: ClassVar[str]  # the simulator's key, when the connector is built without a plant file

    def __init__(
        self,
        url: str,
        *,
        api_key: str,
        plant_config: PlantConfig,
        timeout: float = 15.0,
        transport: httpx.AsyncBaseTransport | None = None,
        tls: TlsSettings | None = None,
    ) -> None:
        self.plant = plant_config
        self.http = RestClient(self.SYSTEM, url, api_key=api_key, timeout=timeout, transport=transport, tls=tls)

    @classmethod
    def from_plant(cls, plant_config: PlantConfig, **kwargs: Any) -> Self:
        cfg: SystemConfig = getattr(plant_config, cls.SYSTEM)
        return cls(system_url(cfg, cls.SYSTEM), api_key=api_key_for(cfg, cls.SYSTEM, cls.DEV_KEY),
                   plant_config=plant_config, timeout=cfg.timeout_s, tls=cfg, **kwargs)

    async def aclose(self) -> None:
        await self.http.aclose()
