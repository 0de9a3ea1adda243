"""Small helpers: timestamps, decimals as strings, request fingerprints."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any


def now() -> datetime:
    return datetime.now(UTC)


def iso(ts: datetime) -> str:
    """ISO 8601 with seconds and the UTC offset (naive times are taken as UTC)."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.isoformat(timespec="seconds")


def dec(value: Decimal | int | str) -> str:
    """A decimal as a plain string without exponent or trailing zeros (``40``, ``2.5``)."""
    d = Decimal(str(value))
    text = format(d.normalize(), "f") if d != 0 else "0"
    return text


def fingerprint(method: str, path: str, body: Any) -> str:
    raw = json.dumps([method, path, body], sort_keys=True, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()
