"""The bare engine, measured on the same Temporal server as plantbridge: trivial workflows started,
signalled and updated, with no plantbridge code in the way. It is the yardstick for the ratio the
benchmark reports."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

BARE_QUEUE = "plantbridge-bench-bare"


@activity.defn(name="bench.noop")
async def noop_activity(n: int) -> int:
    return n


@workflow.defn(name="BenchTrivial")
class BenchTrivialWorkflow:
    def __init__(self) -> None:
        self.signals = 0
        self.done = False

    @workflow.run
    async def run(self, activities: int) -> int:
        for i in range(activities):
            await workflow.execute_activity(noop_activity, i, start_to_close_timeout=timedelta(seconds=30))
        await workflow.wait_condition(lambda: self.done)
        return self.signals

    @workflow.signal
    def ping(self) -> None:
        self.signals += 1

    @workflow.signal
    def finish(self) -> None:
        self.done = True

    @workflow.update
    def bump(self, n: int) -> int:
        self.signals += n
        return self.signals


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1))))
    return ordered[k]


async def _gather_limited(n: int, concurrency: int, make: Any) -> list[Any]:
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> Any:
        async with sem:
            return await make(i)

    return await asyncio.gather(*(one(i) for i in range(n)))


async def bench_bare_engine(client: Client, *, workflows: int, signals: int, updates: int, activities: int,
                            concurrency: int, server_cpu_s: Callable[[], float] | None = None) -> dict[str, Any]:
    """The bare engine's rates; with `server_cpu_s` (the server's CPU seconds so far) also the CPU milliseconds
    one update costs the server and this process (client and worker both run here)."""
    run = uuid.uuid4().hex[:8]
    async with Worker(client, task_queue=BARE_QUEUE, workflows=[BenchTrivialWorkflow], activities=[noop_activity],
                      max_concurrent_activities=200):
        t0 = time.perf_counter()
        handles = await _gather_limited(workflows, concurrency, lambda i: client.start_workflow(
            BenchTrivialWorkflow.run, 0, id=f"bench-bare-{run}-{i}", task_queue=BARE_QUEUE))
        started_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        await _gather_limited(signals, concurrency, lambda i: handles[i % len(handles)].signal(
            BenchTrivialWorkflow.ping))
        signal_s = time.perf_counter() - t0

        latencies: list[float] = []

        async def update(i: int) -> None:
            t = time.perf_counter()
            await handles[i % len(handles)].execute_update(BenchTrivialWorkflow.bump, 1)
            latencies.append(time.perf_counter() - t)

        t0, own0, server0 = time.perf_counter(), time.process_time(), server_cpu_s() if server_cpu_s else 0.0
        await _gather_limited(updates, concurrency, update)
        update_s = time.perf_counter() - t0
        update_cpu_ms = {
            "server": round((server_cpu_s() - server0) * 1000 / max(updates, 1), 2) if server_cpu_s else None,
            "client_and_worker": round((time.process_time() - own0) * 1000 / max(updates, 1), 2),
        }

        t0 = time.perf_counter()
        act = await client.start_workflow(BenchTrivialWorkflow.run, activities, id=f"bench-bare-{run}-act",
                                          task_queue=BARE_QUEUE)
        # the activities run one after another; measure until the workflow waits for `finish`
        await act.signal(BenchTrivialWorkflow.finish)
        await act.result()
        activity_s = time.perf_counter() - t0
        await asyncio.gather(*(h.signal(BenchTrivialWorkflow.finish) for h in handles))
    return {
        "workflows_per_s": round(workflows / started_s, 1),
        "signals_per_s": round(signals / signal_s, 1),
        "updates_per_s": round(updates / update_s, 1),
        "update_latency_ms": {
            "p50": round(percentile(latencies, 50) * 1000, 1),
            "p99": round(percentile(latencies, 99) * 1000, 1),
            "mean": round(statistics.fmean(latencies) * 1000, 1) if latencies else 0.0,
        },
        "update_cpu_ms": update_cpu_ms,
        "sequential_activities_per_s": round(activities / activity_s, 1),
    }
