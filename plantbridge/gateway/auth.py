"""Authentication (Bearer API keys, hashed in the store) and role/plant/event-type authorization.

Error texts never name the key (its name often says which system it belongs to); the inbox row
records the key id for the operator."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from fastapi import Request

from plantbridge.canonical.events import EventType
from plantbridge.gateway import deprecations
from plantbridge.gateway.errors import ApiError
from plantbridge.gateway.ratelimit import RateLimiter
from plantbridge.gateway.tls import client_cert_cn
from plantbridge.store.api_keys import ROLE_KINDS, ROLES, ApiKeys, KeyInfo

Caller = KeyInfo

ERP = frozenset({"erp"})
PLANT = frozenset({"plant-system", "edge"})
EDGE = frozenset({"edge"})
SUPERVISOR = frozenset({"supervisor"})
ANY_ROLE = frozenset(ROLES)

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="plantbridge"'}


async def authenticate(request: Request) -> Caller:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise ApiError(401, "unauthenticated", "send an API key as 'Authorization: Bearer <key>'", headers=_CHALLENGE)
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthenticated", "the Authorization header must read 'Bearer <key>'",
                       headers=_CHALLENGE)
    keys: ApiKeys = request.app.state.keys
    limiter: RateLimiter = request.app.state.limiter
    if keys.needs_lookup(token.strip()) and (wait := limiter.for_lookup()):
        raise ApiError(429, "rate_limited", "too many look-ups of keys this gateway does not know; retry later",
                       headers={"Retry-After": str(wait)})
    caller = await keys.authenticate(token.strip())
    if caller is None:
        raise ApiError(401, "invalid_key", "the API key is unknown, revoked or expired", headers=_CHALLENGE)
    cn = client_cert_cn(request)
    if cn is not None and cn != caller.name:
        raise ApiError(403, "certificate_mismatch", "the client certificate names another holder than this key's")
    if cn is None and caller.source_kind == "edge" and getattr(request.app.state, "edge_cert_required", False):
        raise ApiError(403, "certificate_required", "an edge key needs its client certificate (mutual TLS)")
    if caller.kind is None and caller.role in ROLE_KINDS:  # a key from before source kinds: answers say so
        deprecations.mark(request, deprecations.KEY_WITHOUT_KIND)
    if wait := limiter.for_key(caller.key_id, caller.role):
        rate = limiter.rates[caller.role]
        raise ApiError(429, "rate_limited", f"key {caller.name!r} sends more than its rate ({rate.per_second:g}/s, "
                       f"bursts of {rate.burst}); retry after {wait} s", headers={"Retry-After": str(wait)})
    return caller


def require(roles: frozenset[str]) -> Callable[[Request], Awaitable[Caller]]:
    """A dependency: the caller, when authenticated with one of `roles`."""

    async def dependency(request: Request) -> Caller:
        caller = await authenticate(request)
        if caller.role not in roles:
            needs = " or ".join(sorted(roles))
            raise ApiError(403, "forbidden_role", f"this key has role {caller.role!r}; this needs {needs}")
        return caller

    dependency.roles = roles  # type: ignore[attr-defined]  # read by the OpenAPI document (gateway/openapi.py)
    return dependency


def check_plant(caller: Caller, plant: str) -> None:
    if not caller.may(plant):
        raise ApiError(403, "forbidden_plant", f"this key may not touch plant {plant!r}")


def forbidden_plant_reason(caller: Caller, plant: str) -> str:
    return f"forbidden: this key may not touch plant {plant!r}"


def ownership_denial(caller: Caller, event_type: EventType, source: str,
                     rules: Mapping[EventType, tuple[str, ...]]) -> ApiError | None:
    """403 when the key's source kind may not send this event type, or may not speak for `source`."""
    kind = caller.source_kind
    event_type = EventType(event_type)
    allowed = rules.get(event_type, ())
    if kind is None or kind not in allowed:
        who = f"kind {kind!r}" if kind else f"role {caller.role!r}"
        return ApiError(403, "forbidden_event_type",
                        f"rule event_sources.{event_type.value} = [{', '.join(allowed)}]: a key of {who} may not "
                        f"send {event_type.value}")
    if not caller.may_speak_for(source):
        prefixes = ", ".join(caller.sources or (kind,))
        return ApiError(403, "forbidden_source",
                        f"rule key sources = [{prefixes}]: this key may not speak for source {source[:64]!r}")
    return None
