"""`POST /v1/plant/telemetry`: the edge's telemetry rollups, in bulk, to the Parquet archive.

Bulk data, not events: the body does not go through the inbox (it would swamp it) and nothing of it
reaches a saga or the ERP. Only edge keys may send it, for their plants. The body may be gzip
(`Content-Encoding: gzip`); the size limit applies to the body as sent and, decompressed, to
`INFLATE_FACTOR` times it (a small gzip bomb is refused with 413, not inflated into memory).
"""

from __future__ import annotations

import logging
import zlib
from pathlib import Path

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from plantbridge.batch.telemetry_archive import TelemetryArchive
from plantbridge.canonical.rollup import TelemetryBatch
from plantbridge.gateway.auth import EDGE, Caller, check_plant, require
from plantbridge.gateway.bodies import read_limited
from plantbridge.gateway.errors import ApiError, invalid, retry_after
from plantbridge.gateway.openapi import errors, success
from plantbridge.gateway.responses import JsonResponse
from plantbridge.gateway.routes_plant import JSON_TYPES, unsupported_media_type
from plantbridge.gateway.schemas import TelemetryAnswer

log = logging.getLogger("plantbridge.gateway")
router = APIRouter(tags=["plant"])

INFLATE_FACTOR = 20
ENCODINGS = ("gzip", "identity")


def inflate(raw: bytes, encoding: str, limit: int) -> bytes:
    """The body without its Content-Encoding (gzip or none), at most `limit` bytes."""
    coding = encoding.strip().lower()
    if coding in ("", "identity"):
        return raw
    if coding != "gzip":
        msg = f"Content-Encoding {coding[:40]!r} is not accepted here; send gzip or none"
        raise ApiError(415, "unsupported_media_type", msg, [{"loc": ["header", "content-encoding"], "message": msg}])
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(raw, limit + 1)
    except zlib.error as err:
        raise ApiError(422, "invalid_gzip", f"the body is not valid gzip: {err}",
                       [{"loc": ["body"], "message": "not valid gzip"}]) from None
    if len(out) > limit:
        raise ApiError(413, "body_too_large", f"the body inflates to more than the limit of {limit} bytes")
    if not inflater.eof:
        raise ApiError(422, "invalid_gzip", "the gzip body is truncated",
                       [{"loc": ["body"], "message": "truncated gzip stream"}])
    return out


@router.post(
    "/v1/plant/telemetry",
    summary="Archive telemetry rollups from an edge agent (Parquet, by plant and date)",
    description="`{\"plant\", \"source\", \"rollups\": [...]}` (1 to 5000 per-machine, per-interval rollups), "
                "optionally gzip (`Content-Encoding: gzip`). Stored as Parquet under the plant's export target "
                "(`telemetry/date=YYYY-MM-DD/`), idempotent by rollup key (`machine_id@bucket_start`): a rollup "
                "the archive already holds is counted as `duplicate` and not stored again. Never sent to the ERP.",
    responses={
        200: success(TelemetryAnswer, "Archived: how many rollups were new, how many were already held"),
        **errors(403, 413, 415, 422, 503,
                 e403="The key's role is not `edge`, or it is not bound to the batch's plant",
                 e415="The `Content-Type` is not JSON, or the `Content-Encoding` is not gzip",
                 e503="The archive could not be written (disk full, directory unwritable); nothing was stored, "
                      "send the batch again after `Retry-After` seconds"),
    },
    openapi_extra={"x-plantbridge-body": "telemetry"},
)
async def post_telemetry(request: Request, caller: Caller = Depends(require(EDGE))) -> JSONResponse:
    limit = request.app.state.deps.body_limit
    wrong_type = unsupported_media_type(request.headers.get("content-type", ""), JSON_TYPES)
    if wrong_type is not None:
        raise wrong_type
    raw = inflate(await read_limited(request, limit), request.headers.get("content-encoding", ""),
                  limit * INFLATE_FACTOR)
    try:
        batch = TelemetryBatch.model_validate_json(raw)
    except ValidationError as err:
        raise invalid(err) from None
    check_plant(caller, batch.plant)
    archive: TelemetryArchive = request.app.state.telemetry
    try:
        done = await archive.store(batch.plant, batch.source, batch.rollups)
    except OSError as err:
        log.error("telemetry archive of plant %s not written: %s", batch.plant, err)
        raise ApiError(503, "archive_unavailable", f"the telemetry archive could not be written: {err.strerror}",
                       headers=retry_after()) from None
    log.info("telemetry from %s (plant %s): %d stored, %d already held", batch.source, batch.plant,
             done.stored, done.duplicate)
    root = archive.root(batch.plant)
    return JsonResponse({"plant": batch.plant, "received": len(batch.rollups), "stored": done.stored,
                         "duplicate": done.duplicate,
                         "files": [Path(f).relative_to(root).as_posix() for f in done.files]})
