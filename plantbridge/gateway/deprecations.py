"""What is deprecated, since when, and when it goes: one registry, answered as HTTP headers.

An HTTP answer touched by a deprecated thing carries
- `Deprecation: @<unix seconds>` (RFC 9745: the date it was deprecated),
- `Sunset: <HTTP-date>` (RFC 8594: after it, the thing may stop working),
- `Link: </v1/deprecations>; rel="deprecation sunset"` (where the registry says what to use instead).

What may be deprecated (`applies_to`):
- `endpoint`: an operation (`"POST /v1/..."`): every answer of it; marked `deprecated` in the OpenAPI document;
- `api-key`: a kind of key (the gateway's `authenticate` marks the request): every answer to such a key;
- `contract`: a published schema version (`"plant-event:1"`): its `GET /v1/schemas/...` answer and index entry;
- `temporal-signal`: a form of a Temporal signal. Temporal has no headers: it is listed in
  `GET /v1/deprecations` and the CHANGELOG only.
Several at once: the earliest deprecation date and the earliest sunset are answered.

To deprecate something: add an entry below (and a CHANGELOG line); to retire it after its sunset:
remove the code path and the entry.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from email.utils import format_datetime
from typing import Any, Literal

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REGISTRY_PATH = "/v1/deprecations"
_STATE_KEY = "plantbridge_deprecations"
AppliesTo = Literal["endpoint", "api-key", "contract", "temporal-signal"]


@dataclass(frozen=True)
class Deprecation:
    id: str
    applies_to: AppliesTo
    target: str
    since: date
    sunset: date
    instead: str

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "applies_to": self.applies_to, "target": self.target, "since": self.since.isoformat(),
                "sunset": self.sunset.isoformat(), "instead": self.instead}


KEY_WITHOUT_KIND = "key-without-kind"

DEPRECATIONS: tuple[Deprecation, ...] = (
    Deprecation(
        KEY_WITHOUT_KIND, "api-key",
        "plant-system and edge API keys created before source kinds (no `kind`): they count as `mes`/`edge` "
        "and the events' `source` is not checked",
        since=date(2026, 12, 2), sunset=date(2027, 6, 30),
        instead="a key with a kind: `plantbridge keys create --name N --role plant-system --kind mes|qms|wms "
                "--plants P` (edge: `--role edge`), then revoke the old key"),
    Deprecation(
        "order-released-whole-order", "temporal-signal",
        "`order_released` carrying a whole `ProductionOrder` (gateways before OrderReleaseNotice); the saga takes "
        "it as its key only",
        since=date(2026, 12, 2), sunset=date(2027, 6, 30),
        instead="`order_released(OrderReleaseNotice{plant, order, version, source})`"),
    Deprecation(
        "maintenance-decision-without-argument", "temporal-signal",
        "`retry_step` / `skip_step` of a `MaintenanceRequest` without a `StepDecision` (recorded as `by: maintenance`)",
        since=date(2026, 12, 2), sunset=date(2027, 6, 30),
        instead="`retry_step(StepDecision{by, comment})`, `skip_step(StepDecision{by, comment})`"),
)


def mark(request: Request, deprecation_id: str) -> None:
    """The answer to this request carries the deprecation's headers (e.g. a key without kind)."""
    found = request.scope.setdefault("state", {}).setdefault(_STATE_KEY, [])
    if deprecation_id not in found:
        found.append(deprecation_id)


def by_id(deprecation_id: str, registry: Sequence[Deprecation] | None = None) -> Deprecation:
    return next(d for d in (DEPRECATIONS if registry is None else registry) if d.id == deprecation_id)


def for_target(applies_to: AppliesTo, target: str, registry: Sequence[Deprecation] | None = None,
               ) -> Deprecation | None:
    found = DEPRECATIONS if registry is None else registry
    return next((d for d in found if d.applies_to == applies_to and d.target == target), None)


def headers(found: Iterable[Deprecation]) -> dict[str, str]:
    found = list(found)
    if not found:
        return {}
    since = min(d.since for d in found)
    sunset = min(d.sunset for d in found)
    return {"Deprecation": f"@{int(datetime.combine(since, time(), UTC).timestamp())}",
            "Sunset": format_datetime(datetime.combine(sunset, time(), UTC), usegmt=True),
            "Link": f'<{REGISTRY_PATH}>; rel="deprecation sunset"; type="application/json"'}


def _template(target: str) -> tuple[str, re.Pattern[str]]:
    method, _, path = target.partition(" ")
    pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path))
    return method.upper(), re.compile(f"^{pattern}$")


class DeprecationHeaders:
    """ASGI middleware: adds the headers to answers of deprecated endpoints and of marked requests."""

    def __init__(self, app: ASGIApp, registry: Sequence[Deprecation] | None = None) -> None:
        self.app = app
        self.registry = DEPRECATIONS if registry is None else registry
        self.endpoints = [(d, *_template(d.target)) for d in self.registry if d.applies_to == "endpoint"]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        method, path = scope["method"], scope["path"]
        hit = [d for d, m, rx in self.endpoints if m == method and rx.match(path)]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                found = hit + [by_id(i, self.registry) for i in state.get(_STATE_KEY, ())]
                extra = headers(found)
                if extra:
                    message = {**message, "headers": [*message.get("headers", []),
                                                      *((k.lower().encode(), v.encode()) for k, v in extra.items())]}
            await send(message)

        await self.app(scope, receive, sending)
