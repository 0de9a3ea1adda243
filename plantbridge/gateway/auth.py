"""Authentication (Bearer API keys, hashed in the store) and role/plant authorization."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request

from plantbridge.gateway.errors import ApiError
from plantbridge.store.api_keys import ApiKeys, KeyInfo

Caller = KeyInfo

ERP = frozenset({"erp"})
PLANT = frozenset({"plant-system", "edge"})
EDGE = frozenset({"edge"})
SUPERVISOR = frozenset({"supervisor"})

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
    caller = await keys.authenticate(token.strip())
    if caller is None:
        raise ApiError(401, "invalid_key", "the API key is unknown or revoked", headers=_CHALLENGE)
    return caller


def require(roles: frozenset[str]) -> Callable[[Request], Awaitable[Caller]]:
    """A dependency: the caller, when authenticated with one of `roles`."""

    async def dependency(request: Request) -> Caller:
        caller = await authenticate(request)
        if caller.role not in roles:
            needs = " or ".join(sorted(roles))
            raise ApiError(403, "forbidden_role", f"key {caller.name!r} has role {caller.role!r}; this needs {needs}")
        return caller

    dependency.roles = roles  # type: ignore[attr-defined]  # read by the OpenAPI document (gateway/openapi.py)
    return dependency


def check_plant(caller: Caller, plant: str) -> None:
    if not caller.may(plant):
        raise ApiError(403, "forbidden_plant", f"key {caller.name!r} may not touch plant {plant!r}")


def forbidden_plant_reason(caller: Caller, plant: str) -> str:
    return f"forbidden: key {caller.name!r} may not touch plant {plant!r}"
