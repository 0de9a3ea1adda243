"""Reading request bodies with a size limit, and parsing JSON defensively."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from plantbridge.gateway.errors import ApiError


class BodyTooLarge(ApiError):
    def __init__(self, limit: int, size: int | None) -> None:
        told = f" ({size} bytes)" if size is not None else ""
        super().__init__(413, "body_too_large", f"the body{told} is larger than the limit of {limit} bytes")
        self.prefix = b""


async def read_limited(request: Request, limit: int) -> bytes:
    """The whole body, or BodyTooLarge (keeping the first KiB of it for the dead letter)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit, int(declared))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            err = BodyTooLarge(limit, None)
            err.prefix = b"".join(chunks)[:1024]
            raise err
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(raw: bytes) -> Any:
    if not raw.strip():
        raise ApiError(422, "invalid_json", "the body is empty; send a JSON document",
                       [{"loc": ["body"], "message": "empty body"}])
    try:
        return json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise ApiError(422, "invalid_json", "the JSON document is nested too deeply",
                       [{"loc": ["body"], "message": "nested too deeply"}]) from None
    except ValueError as err:  # includes UnicodeDecodeError and JSONDecodeError
        msg = str(err)[:200]
        raise ApiError(422, "invalid_json", f"the body is not valid UTF-8 JSON: {msg}",
                       [{"loc": ["body"], "message": msg}]) from None


def text_of(raw: bytes, limit: int = 4000) -> str:
    return raw[:limit].decode("utf-8", errors="replace")
