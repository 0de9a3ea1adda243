"""The one escalation timer of every workflow here: alert when something is still not done after a
first period, escalate after a second. The order saga's SLA watchers (`sla.py`) and the
`MaintenanceRequest` child both wait this way. Deterministic: `workflow.now()` and timers only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from temporalio import workflow

LEVELS = (1, 2)


async def escalate_until(
    done: Callable[[], bool],
    first: timedelta,
    then: timedelta,
    alert: Callable[[int], Awaitable[None]],
    *,
    since: datetime | None = None,
) -> bool:
    """Wait for `done()`; alert level 1 when it is still false `first` after `since` (default: now),
    level 2 `then` after that alert. True when `done()` came before the last alert."""
    deadline = (since or workflow.now()) + first
    for level in LEVELS:
        remaining = max(deadline - workflow.now(), timedelta(seconds=1))
        try:
            await workflow.wait_condition(done, timeout=remaining)
            return True
        except TimeoutError:
            pass
        await alert(level)
        deadline = workflow.now() + then
    return False
