"""`GET /v1/schemas`, `/v1/schemas/{name}`, `/v1/schemas/{name}/{version}`: the published contracts
(JSON Schema 2020-12, gateway/contracts.py); `GET /v1/deprecations`: what is deprecated until when.

Who may read: any valid key, of any role. The schemas are not secret (they are checked in under
`docs/schemas/`), but the gateway serves nothing beyond `/healthz` and `/readyz` without a key, and every
integrator (ERP, plant system, edge, supervisor) holds one.
"""

from __future__ import annotations

import functools
from typing import Any

from fastapi import APIRouter, Depends, Path
from fastapi.responses import JSONResponse

from plantbridge.gateway import deprecations
from plantbridge.gateway.auth import ANY_ROLE, Caller, require
from plantbridge.gateway.contracts import CONTRACTS, NAME_PATTERN, Contract, find
from plantbridge.gateway.errors import ApiError
from plantbridge.gateway.openapi import errors, success
from plantbridge.gateway.schemas import DeprecationList, SchemaIndex, SchemaVersions

router = APIRouter(tags=["contracts"])
SCHEMA_MEDIA = "application/schema+json"
_CACHE = {"Cache-Control": "private, max-age=300"}


class SchemaResponse(JSONResponse):
    media_type = SCHEMA_MEDIA


def entry(contract: Contract) -> dict[str, Any]:
    gone = deprecations.for_target("contract", f"{contract.name}:{contract.version}")
    return {"name": contract.name, "version": contract.version, "title": contract.title,
            "direction": contract.direction, "endpoint": contract.endpoint, "href": contract.path,
            "deprecated": gone is not None, "sunset": gone.sunset.isoformat() if gone else None}


@functools.cache
def _schema(name: str, version: int) -> dict[str, Any]:
    contract = find(name, version)
    assert contract is not None
    return contract.schema()


@router.get("/v1/schemas", summary="The published contracts: every inbound message's JSON Schema, per version",
            response_model=SchemaIndex,
            description="One entry per contract and version (`plant-event`, one `plant-event.<event_type>` each, "
                        "`plant-event-batch`, `acknowledgement`, `sap-business-event`, `odoo-webhook`, "
                        "`telemetry-batch`), with where to fetch it. A published version only ever widens what it "
                        "accepts; an incompatible change is a new version.",
            responses={200: success(SchemaIndex, "The contracts")})
async def list_schemas(caller: Caller = Depends(require(ANY_ROLE))) -> JSONResponse:
    return JSONResponse({"schemas": [entry(c) for c in CONTRACTS]}, headers=_CACHE)


_NAME = Path(pattern=NAME_PATTERN, max_length=64, description="The contract's name", examples=["plant-event"])


@router.get("/v1/schemas/{name}", summary="The published versions of one contract", response_model=SchemaVersions,
            responses={200: success(SchemaVersions, "Its versions"),
                       **errors(404, 422, e404="No contract of that name (`code` `schema_not_found`)")})
async def schema_versions(name: str = _NAME, caller: Caller = Depends(require(ANY_ROLE))) -> JSONResponse:
    versions = [entry(c) for c in CONTRACTS if c.name == name]
    if not versions:
        raise ApiError(404, "schema_not_found", f"no contract named {name!r}; GET /v1/schemas lists them")
    return JSONResponse({"name": name, "versions": versions}, headers=_CACHE)


@router.get("/v1/schemas/{name}/{version}", summary="One contract version's JSON Schema (draft 2020-12)",
            openapi_extra={"x-plantbridge-media": SCHEMA_MEDIA},  # the 200's media type (gateway/openapi.py)
            description="The schema the gateway validates that message with (generated from its model, identical "
                        "to `docs/schemas/v<version>/<name>.json`). A deprecated version answers `Deprecation` and "
                        "`Sunset`.",
            responses={200: {"description": "The JSON Schema", "content": {"application/json": {"schema": {
                "type": "object", "description": "A JSON Schema (draft 2020-12)"}}}},
                       **errors(404, 422, e404="No such contract or version (`code` `schema_not_found`)")})
async def get_schema(name: str = _NAME,
                     version: int = Path(ge=1, le=999, description="The contract version", examples=[1]),
                     caller: Caller = Depends(require(ANY_ROLE))) -> JSONResponse:
    contract = find(name, version)
    if contract is None:
        known = sorted(c.version for c in CONTRACTS if c.name == name)
        hint = f"versions of {name!r}: {known}" if known else "GET /v1/schemas lists the contracts"
        raise ApiError(404, "schema_not_found", f"no contract {name!r} version {version}; {hint}")
    gone = deprecations.for_target("contract", f"{name}:{version}")
    return SchemaResponse(_schema(name, version), headers={**_CACHE, **deprecations.headers([gone] if gone else [])})


@router.get(deprecations.REGISTRY_PATH, summary="What is deprecated, since when, its sunset and what to use instead",
            response_model=DeprecationList,
            description="The registry behind the `Deprecation` (RFC 9745) and `Sunset` (RFC 8594) headers: "
                        "deprecated endpoints, kinds of API keys, contract versions and Temporal signal forms.",
            responses={200: success(DeprecationList, "The deprecations, oldest first")})
async def list_deprecations(caller: Caller = Depends(require(ANY_ROLE))) -> JSONResponse:
    return JSONResponse({"deprecations": [d.as_json() for d in sorted(deprecations.DEPRECATIONS,
                                                                     key=lambda d: (d.since, d.id))]},
                        headers=_CACHE)
