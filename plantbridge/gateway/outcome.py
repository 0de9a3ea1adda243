"""What the gateway answers a stored message: HTTP status and body (kept in the inbox as the answer)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from plantbridge.gateway.errors import ApiError


@dataclass
class Outcome:
    http_status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)  # e.g. Retry-After on a deferred message

    @classmethod
    def of(cls, err: ApiError) -> Outcome:
        return cls(err.status, err.body())

    def stored(self) -> dict[str, Any]:
        return {"http_status": self.http_status, "body": self.body}
