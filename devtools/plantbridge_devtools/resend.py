"""How the demo's simulated plant people and systems call the stack: as a real plant system would.

A request is sent again while the answer says "not now" (429, 502, 503, 504: after `Retry-After` when the
answer gives one, else with a growing pause) or no answer came back, until `resend_for_s` has passed:

- a connection that could not be opened (nothing was sent) is always sent again;
- a lost answer (the connection broke or timed out after the request went out) is sent again for reads,
  and for writes only when `resend_writes` says the receiver deduplicates them (the gateway: its inbox
  keeps every message, the sagas drop a second delivery of an event id, its levers answer 409 to a
  lever already pulled). `ambiguous` in the result says a write may have taken effect before.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

NOT_NOW = (429, 502, 503, 504)


@dataclass
class Sent:
    response: httpx.Response
    attempts: int
    ambiguous: bool  # an earlier attempt of a write may have been processed (its answer was lost)


def retry_after_s(response: httpx.Response, default: float) -> float:
    value = response.headers.get("Retry-After", "")
    try:
        return min(max(float(value), 0.0), 60.0)
    except ValueError:
        return default


async def send(http: httpx.AsyncClient, method: str, url: str, *, resend_for_s: float, resend_writes: bool = False,
               on_resend: Callable[[str], None] | None = None, **kw: Any) -> Sent:
    """Send until an answer other than "not now" comes back or `resend_for_s` ran out (then the last
    answer, or the last transport error raised)."""
    deadline = time.monotonic() + resend_for_s
    pause, attempts, ambiguous = 0.5, 0, False
    read = method.upper() in ("GET", "HEAD")
    while True:
        attempts += 1
        try:
            response = await http.request(method, url, **kw)
        except httpx.TransportError as err:
            sent = not isinstance(err, httpx.ConnectError | httpx.ConnectTimeout)
            if (sent and not (read or resend_writes)) or time.monotonic() + pause > deadline:
                raise
            ambiguous = ambiguous or (sent and not read)
            why = f"{type(err).__name__}"
        else:
            if response.status_code not in NOT_NOW or time.monotonic() + pause > deadline:
                return Sent(response, attempts, ambiguous)
            # A 503 after a time-out inside the receiver may still have been acted on.
            ambiguous = ambiguous or (not read and response.status_code in (502, 504))
            why = f"HTTP {response.status_code}"
            pause = max(pause, retry_after_s(response, pause))
        if on_resend is not None:
            on_resend(f"{method} {url}: {why}; sent again in {pause:.1f} s")
        await asyncio.sleep(pause)
        pause = min(pause * 2, 5.0)
