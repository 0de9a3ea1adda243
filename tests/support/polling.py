"""Polling instead of sleeping: wait until a condition holds, fail naming what did not happen."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def eventually(check: Callable[[], T | Awaitable[T | None] | None], timeout: float = 30.0, *,
                     what: str = "condition", every: float = 0.1) -> T:
    """Call `check` (sync, async, or a lambda returning an awaitable) until its value is truthy; return it.

    Raises AssertionError naming `what` after `timeout` seconds (the shared CPU makes things slow:
    be generous with timeouts, never assert on durations)."""
    deadline = time.monotonic() + timeout
    while True:
        value: Any = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value  # type: ignore[no-any-return]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(every)
