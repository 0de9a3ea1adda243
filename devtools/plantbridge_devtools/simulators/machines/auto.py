"""Auto mode: a background tick that makes the simulated machines produce, stop and drift.

``realistic``: producing machines count parts at their cycle time (3 % scrap), stop now and then with a
random reason (MAINT, NO_MATERIAL, BREAKDOWN) for 2-10 s and resume; temperatures drift with noise.
Machines stopped by the scripting API stay stopped until ``run``.

``stress``: every tick changes every machine's counters, cycle time, temperature, order, operation,
stop reason and MachineryItemState (with its LastTransition), i.e. 10+ value changes per machine per
tick, for load tests.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Literal

from .model import MachineryItemState, MachineStatus, StopReason

_log = logging.getLogger(__name__)

SCRAP_RATE = 0.03
DOWNTIME_SECONDS = (2.0, 10.0)


class AutoDriver:
    """Ticks the given machines and publishes them through `publish`; `writes()` counts the simulator's
    value writes (for the load figures). It knows nothing of the OPC UA server that owns the machines."""

    def __init__(
        self,
        statuses: Sequence[MachineStatus],
        publish: Callable[[Iterable[MachineStatus]], Awaitable[None]],
        writes: Callable[[], int],
        rate_hz: float,
        seed: int | None,
        *,
        profile: Literal["realistic", "stress"] = "realistic",
        stop_probability: float = 0.01,
    ) -> None:
        if not 0 < rate_hz <= 1000:
            raise ValueError("rate_hz must be in (0, 1000]")
        if profile not in ("realistic", "stress"):
            raise ValueError("profile must be 'realistic' or 'stress'")
        self.statuses = list(statuses)
        self.publish = publish
        self.writes = writes
        self.rate_hz = rate_hz
        self.profile = profile
        self.stop_probability = stop_probability
        self.random = random.Random(seed)
        self.ticks = 0
        self.overruns = 0
        self.tick_seconds = 0.0
        self._downtime: dict[str, int] = {}  # machine id -> ticks left of an auto stop
        self._progress: dict[str, float] = {}  # machine id -> fraction of the current part
        self._task: asyncio.Task[None] | None = None
        self._started_at = 0.0
        self._writes_at_start = 0

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        self._started_at = time.perf_counter()
        self._writes_at_start = self.writes()
        self._task = asyncio.create_task(self._loop(), name="machine-simulator-auto")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    def stats(self) -> dict[str, Any]:
        elapsed = max(time.perf_counter() - self._started_at, 1e-9)
        writes = self.writes() - self._writes_at_start
        return {
            "running": self.running,
            "profile": self.profile,
            "rate_hz": self.rate_hz,
            "ticks": self.ticks,
            "overruns": self.overruns,
            "writes": writes,
            "writes_per_s": round(writes / elapsed, 1),
            "mean_tick_ms": round(1000 * self.tick_seconds / max(self.ticks, 1), 3),
        }

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        period = 1.0 / self.rate_hz
        deadline = loop.time()
        statuses = self.statuses
        while True:
            began = time.perf_counter()
            try:
                for status in statuses:
                    if self.profile == "stress":
                        self._stress(status)
                    else:
                        self._realistic(status, period)
                await self.publish(statuses)
            except Exception:  # keep ticking: a failed write must not end the demo
                _log.exception("auto mode tick failed")
            self.ticks += 1
            self.tick_seconds += time.perf_counter() - began
            deadline += period
            delay = deadline - loop.time()
            if delay < 0:
                self.overruns += 1
                deadline = loop.time()
                delay = 0
            await asyncio.sleep(delay)

    def _realistic(self, status: MachineStatus, period: float) -> None:
        rng = self.random
        mid = status.spec.id
        executing = status.machinery_state is MachineryItemState.EXECUTING
        target = status.spec.ambient_temperature + (12.0 if executing else 0.0)
        status.temperature += 0.05 * (target - status.temperature) + rng.gauss(0.0, 0.15)
        if status.held_by_script:
            return
        left = self._downtime.get(mid)
        if left is not None:
            if left <= 1:
                del self._downtime[mid]
                status.run()
            else:
                self._downtime[mid] = left - 1
            return
        if not executing:
            status.run()
            return
        if rng.random() < self.stop_probability:
            reason = rng.choice(list(StopReason))
            status.stop(reason.value)
            low, high = DOWNTIME_SECONDS
            self._downtime[mid] = max(1, round(rng.uniform(low, high) * self.rate_hz))
            return
        progress = self._progress.get(mid, 0.0) + 1000.0 * period / status.spec.nominal_cycle_time_ms
        parts = int(progress)
        self._progress[mid] = progress - parts
        for _ in range(parts):
            if rng.random() < SCRAP_RATE:
                status.add_counts(scrap=1)
            else:
                status.add_counts(good=1)
            status.cycle_time_ms = round(status.spec.nominal_cycle_time_ms * (1 + rng.gauss(0.0, 0.05)), 1)

    def _stress(self, status: MachineStatus) -> None:
        rng = self.random
        tick = self.ticks
        status.add_counts(good=1, scrap=1)
        status.cycle_time_ms = round(status.spec.nominal_cycle_time_ms * (1 + rng.gauss(0.0, 0.05)), 1)
        status.temperature = status.spec.ambient_temperature + rng.gauss(0.0, 1.0)
        status.order = f"LOAD-{tick % 1000:04d}"
        status.operation = f"{(tick % 100) * 10:04d}"
        if status.machinery_state is MachineryItemState.EXECUTING:
            status.stop("LOAD")
        else:
            status.run()
