"""The OData v2 layer under the S/4HANA connector: session, CSRF token, ETags, codec and errors.

`SapHttp` owns one `httpx.AsyncClient` (basic auth, session cookies, `sap-client`, JSON) and makes
every call to SAP Gateway. It fetches the CSRF token lazily, re-fetches it once when SAP answers
`403` with `x-csrf-token: Required`, logs one line per call (service, entity, HTTP status, SAP
message code) and turns every failure into a `TransientError` or a `BusinessRejection` — the one
place where SAP errors are classified:

==========================================================  =================================
what SAP (or the network) answered                          raised
==========================================================  =================================
timeout, connection refused/reset, other transport errors   TransientError (code NETWORK/...)
HTTP 5xx (HTML page of the ICM or a JSON Gateway error)     TransientError
HTTP 429, 408                                               TransientError
HTTP 412 (ETag outdated; callers re-read first)             TransientError
HTTP 400 with a lock message (`LOCK_CODES`, "locked by")    TransientError
HTTP 403 CSRF still required after a fresh token            TransientError (code CSRF)
HTTP 401                                                    BusinessRejection (credentials)
HTTP 403 without CSRF                                       BusinessRejection (authorization)
any other 4xx with an SAP error (E/A messages)              BusinessRejection(code=CLASS/NO)
==========================================================  =================================
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from plantbridge.canonical.plant_config import TlsSettings
from plantbridge.connectors.errors import BusinessRejection, ConnectorError, TransientError
from plantbridge.connectors.oauth2 import ClientCredentials
from plantbridge.connectors.tls import http_client

log = logging.getLogger("plantbridge.connectors.sap_odata")

SYSTEM = "erp"
ODATA_ROOT = "/sap/opu/odata/sap/"

# SAP messages that mean "someone else holds the enqueue lock on the object": retry later.
# Only MC/601 is confirmed (simulator docs, public ABAP code); other lock messages (e.g. the material
# lock of goods movements, "The plant data of the material & is locked by the user &") are caught
# by their text, which names the locking *user* -- a status lock ("locked by the system") is not.
LOCK_CODES = frozenset({"MC/601"})
_LOCK_TEXT = re.compile(
    r"(currently locked by user|locked by (the )?user|currently being processed by (the )?user)", re.IGNORECASE
)
_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")
_DURATION = re.compile(r"^PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)(?:\.\d+)?S)?$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# --- codec ------------------------------------------------------------------------------------


def parse_date(value: Any) -> date | None:
    """`/Date(ms)/` or `/Date(ms+0000)/` (or ISO text) -> date; null/empty -> None."""
    moment = parse_datetime(value)
    return moment.date() if moment else None


def parse_datetime(value: Any) -> datetime | None:
    """`/Date(ms)/` (UTC) or `/Date(ms+hhmm)/` -> aware datetime in UTC; null/empty -> None."""
    if value in (None, ""):
        return None
    text = str(value)
    m = _DATE.match(text)
    if m is None:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    # The offset of /Date(ms+hhmm)/ only tells the sender's zone: ms counts from the UTC epoch.
    return _EPOCH + timedelta(milliseconds=int(m.group(1)))


def format_date(value: date) -> str:
    """date -> `/Date(ms)/` (midnight UTC, as Edm.DateTime carries dates)."""
    moment = datetime.combine(value, time(), UTC)
    return f"/Date({int((moment - _EPOCH) / timedelta(milliseconds=1))})/"


def parse_duration(value: Any) -> time | None:
    """Edm.Time `PT08H30M00S` -> time; null/empty -> None."""
    if value in (None, ""):
        return None
    m = _DURATION.match(str(value))
    if m is None:
        raise ValueError(f"{value!r} is not an Edm.Time literal (PThhHmmMssS)")
    h, mi, s = (int(g or 0) for g in m.groups())
    return time(h % 24, mi, s)


def format_duration(value: time) -> str:
    return f"PT{value.hour:02d}H{value.minute:02d}M{value.second:02d}S"


def to_decimal(value: Any) -> Decimal:
    """Edm.Decimal arrives as a string ("12.500"); empty means zero."""
    if value in (None, ""):
        return Decimal(0)
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{value!r} is not an Edm.Decimal") from None


def decimal_text(value: Decimal) -> str:
    """Decimal -> Edm.Decimal string without exponent ("40", "12.5")."""
    text = format(value.normalize(), "f")
    return "0" if text in ("", "-0") else text


def flag(value: Any) -> bool:
    """SAP indicators: "X" or true."""
    return value is True or (isinstance(value, str) and value.strip().upper() == "X")


def results(payload: Any) -> list[dict[str, Any]]:
    """The rows of a collection or of an expanded to-many navigation (`{"results": [...]}`)."""
    if isinstance(payload, dict) and isinstance(payload.get("results"), list):
        return list(payload["results"])
    if isinstance(payload, list):
        return payload
    return []


# --- messages and errors ----------------------------------------------------------------------


@dataclass(frozen=True)
class SapMessage:
    code: str
    text: str
    severity: str = "info"


def parse_sap_message(header: str | None) -> list[SapMessage]:
    """The `sap-message` header (JSON: code, message, severity, details[])."""
    if not header:
        return []
    try:
        data = json.loads(header)
    except json.JSONDecodeError:
        return [SapMessage("", header[:200])]
    if not isinstance(data, dict):
        return []
    out = [SapMessage(str(data.get("code", "")), str(data.get("message", "")), str(data.get("severity", "info")))]
    for detail in data.get("details") or []:
        if isinstance(detail, dict):
            out.append(
                SapMessage(str(detail.get("code", "")), str(detail.get("message", "")), str(detail.get("severity", "")))
            )
    return out


@dataclass(frozen=True)
class SapErrorBody:
    code: str | None
    message: str
    details: list[str] = field(default_factory=list)


def parse_error(response: httpx.Response) -> SapErrorBody:
    """SAP Gateway's JSON error body, or the gist of a non-JSON one (ICM HTML page, plain text)."""
    try:
        data = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        data = None
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        message = error.get("message")
        text = str(message.get("value", "")) if isinstance(message, dict) else str(message or "")
        inner_raw = error.get("innererror")
        inner: dict[str, Any] = inner_raw if isinstance(inner_raw, dict) else {}
        details = [
            str(d.get("message", ""))
            for d in (inner.get("errordetails") or [])
            if isinstance(d, dict) and d.get("message")
        ]
        code = error.get("code")
        return SapErrorBody(str(code) if code else None, text, details)
    raw = response.text
    title = re.search(r"<title>(.*?)</title>", raw, re.IGNORECASE | re.DOTALL)
    h = re.search(r"<h[12]>(.*?)</h[12]>", raw, re.IGNORECASE | re.DOTALL)
    found = title or h
    gist = found.group(1) if found else re.sub(r"<[^>]+>", " ", raw)
    return SapErrorBody(None, " ".join(gist.split())[:300] or response.reason_phrase)


def is_lock(code: str | None, text: str) -> bool:
    return (code or "") in LOCK_CODES or bool(_LOCK_TEXT.search(text))


def classify(response: httpx.Response, what: str, user: str) -> ConnectorError:
    """Turn an error answer of SAP into the error the saga acts on."""
    status = response.status_code
    body = parse_error(response)
    code = body.code or f"HTTP/{status}"
    text = body.message or response.reason_phrase
    if status >= 500 or status in (408, 429):
        return TransientError(f"SAP {what}: HTTP {status}: {text}", system=SYSTEM, code=code, details=body.details)
    if status == 412:
        return TransientError(
            f"SAP {what}: the object was changed concurrently (ETag outdated): {text}",
            system=SYSTEM,
            code=code,
            details=body.details,
        )
    if status == 401:
        return BusinessRejection(
            f"SAP {what}: logon failed for user {user} (HTTP 401): check the user and password configured "
            "for this plant's SAP connection",
            system=SYSTEM,
            code=code,
        )
    if status == 403:
        return BusinessRejection(
            f"SAP {what}: user {user} is not authorized (HTTP 403: {text}): the SAP user needs the "
            "authorizations (business role) for this service",
            system=SYSTEM,
            code=code,
            details=body.details,
        )
    if is_lock(body.code, text):
        return TransientError(f"SAP {what}: {text}", system=SYSTEM, code=code, details=body.details)
    return BusinessRejection(text, system=SYSTEM, code=code, details=body.details)


# --- the session ------------------------------------------------------------------------------


@dataclass
class SapResponse:
    status: int
    headers: httpx.Headers
    payload: Any
    messages: list[SapMessage]

    @property
    def d(self) -> Any:
        """The content of the `d` envelope."""
        return self.payload.get("d") if isinstance(self.payload, dict) else None

    @property
    def etag(self) -> str | None:
        etag: str | None = self.headers.get("etag")
        if etag:
            return etag
        d = self.d
        meta = d.get("__metadata") if isinstance(d, dict) else None
        tag = meta.get("etag") if isinstance(meta, dict) else None
        return str(tag) if tag else None

    @property
    def message(self) -> str | None:
        return self.messages[0].text if self.messages else None


class SapHttp:
    """One SAP Gateway session: basic auth + session cookie + CSRF token, JSON in and out."""

    def __init__(
        self,
        base_url: str,
        *,
        user: str,
        password: str | None = None,
        client: str = "100",
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        tls: TlsSettings | None = None,
        auth: httpx.Auth | None = None,
    ) -> None:
        self.user = user
        self.client = client
        self.timeout = timeout
        self._auth = auth
        self._http = http_client(
            tls=tls,
            base_url=base_url.rstrip("/"),
            auth=auth or httpx.BasicAuth(user, password or ""),
            params={"sap-client": client},
            headers={"Accept": "application/json", "sap-client": client},
            timeout=timeout,
            transport=transport,
        )
        self._token: str | None = None
        self._token_lock = asyncio.Lock()

    async def aclose(self) -> None:
        await self._http.aclose()
        if isinstance(self._auth, ClientCredentials):
            await self._auth.aclose()

    @staticmethod
    def path(service: str, resource: str = "") -> str:
        return f"{ODATA_ROOT}{service}/{resource}"

    async def _send(
        self, method: str, service: str, resource: str, what: str, **kwargs: Any
    ) -> httpx.Response:
        try:
            return await self._http.request(method, self.path(service, resource), **kwargs)
        except httpx.TimeoutException as exc:
            log.warning("sap %s %s %s -> timeout after %ss", method, service, what, self.timeout)
            raise TransientError(
                f"SAP {what}: no answer within {self.timeout:g} s ({type(exc).__name__})",
                system=SYSTEM,
                code="NETWORK/TIMEOUT",
            ) from exc
        except httpx.TransportError as exc:
            log.warning("sap %s %s %s -> %s", method, service, what, type(exc).__name__)
            raise TransientError(
                f"SAP {what}: cannot reach the system ({type(exc).__name__}: {exc})",
                system=SYSTEM,
                code="NETWORK/ERROR",
            ) from exc

    async def csrf_token(self, service: str, *, refresh: bool = False) -> str:
        """The session's CSRF token, fetched with a cheap GET of the service document."""
        async with self._token_lock:
            if self._token is None or refresh:
                response = await self._send("GET", service, "", "CSRF token", headers={"X-CSRF-Token": "Fetch"})
                token = response.headers.get("x-csrf-token")
                log.info("sap GET %s CSRF-fetch -> %s", service, response.status_code)
                if response.status_code >= 400:
                    raise classify(response, f"{service} CSRF token", self.user)
                if not token or token.lower() == "required":
                    raise TransientError(
                        f"SAP {service}: no CSRF token in the answer", system=SYSTEM, code="CSRF/FETCH"
                    )
                self._token = token
            return self._token

    async def request(
        self,
        method: str,
        service: str,
        resource: str,
        *,
        entity: str,
        params: dict[str, str] | None = None,
        body: Any = None,
        if_match: str | None = None,
    ) -> SapResponse:
        """Call SAP; return the parsed answer of a 2xx or raise the classified error."""
        what = f"{service} {entity}"
        changing = method.upper() not in ("GET", "HEAD")
        response: httpx.Response | None = None
        for attempt in range(2):
            headers: dict[str, str] = {}
            if changing:
                headers["X-CSRF-Token"] = await self.csrf_token(service, refresh=attempt > 0)
            if if_match:
                headers["If-Match"] = if_match
            response = await self._send(method, service, resource, what, params=params, json=body, headers=headers)
            csrf_required = (
                response.status_code == 403 and response.headers.get("x-csrf-token", "").lower() == "required"
            )
            if changing and csrf_required:
                log.info("sap %s %s %s -> 403 CSRF token required (attempt %d)", method, service, entity, attempt + 1)
                if attempt == 0:
                    continue
                raise TransientError(
                    f"SAP {what}: CSRF token refused even after fetching a new one", system=SYSTEM, code="CSRF/REQUIRED"
                )
            break
        assert response is not None
        if response.status_code >= 400:
            error = classify(response, what, self.user)
            log.info(
                "sap %s %s %s -> %s %s (%s)",
                method, service, entity, response.status_code, error.code, type(error).__name__,
            )
            raise error
        messages = parse_sap_message(response.headers.get("sap-message"))
        first = messages[0].code if messages else ""
        log.info("sap %s %s %s -> %s %s", method, service, entity, response.status_code, first)
        for msg in messages:
            if msg.severity in ("warning", "error"):
                log.warning("sap %s %s %s: %s %s %s", method, service, entity, msg.severity, msg.code, msg.text)
        payload: Any = None
        if response.content and "json" in response.headers.get("content-type", ""):
            payload = response.json()
        return SapResponse(response.status_code, response.headers, payload, messages)

    async def get(
        self, service: str, resource: str, *, entity: str, params: dict[str, str] | None = None
    ) -> SapResponse:
        return await self.request("GET", service, resource, entity=entity, params=params)

    async def post(
        self,
        service: str,
        resource: str,
        *,
        entity: str,
        body: Any = None,
        params: dict[str, str] | None = None,
        if_match: str | None = None,
    ) -> SapResponse:
        return await self.request("POST", service, resource, entity=entity, body=body, params=params, if_match=if_match)


def quote_literal(value: str) -> str:
    """An OData string literal: `'it''s'`."""
    return "'" + value.replace("'", "''") + "'"
