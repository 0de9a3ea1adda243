"""Batch activities: the shift summary (facts from the store, OEE, B2MML, export).

Idempotent: the documents are named by the content hash of the summary, and an export target
holds each name once. Which shift: the one given, or the one that ended `grace` before the
schedule fired, or (by hand, without a shift) the last that ended.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio import activity
from temporalio.exceptions import ApplicationError

from plantbridge.batch.b2mml import InvalidB2MML
from plantbridge.batch.export import export, shift_documents
from plantbridge.batch.sources import accepted_events, facts_from_events
from plantbridge.batch.summary import summarize
from plantbridge.canonical.batch_config import DirectoryExport, ExportTarget
from plantbridge.canonical.batch_jobs import (
    INVALID_B2MML,
    SHIFT_SUMMARY_ACTIVITY,
    ShiftSummaryJob,
    ShiftSummaryResult,
)
from plantbridge.canonical.plant_config import PlantConfig
from plantbridge.canonical.plant_time import ShiftWindow, last_ended, window, windows_between
from plantbridge.store.db import Database

# A schedule fires at shift end + grace; its run may start a little later (jitter, catch-up).
MATCH_TOLERANCE = timedelta(minutes=1)
# A batch activity heartbeats this often while it works, so a killed worker's run is retried on
# another worker after the workflow's heartbeat timeout, not after the whole start-to-close timeout.
HEARTBEAT_EVERY = timedelta(seconds=3)


@contextlib.asynccontextmanager
async def heartbeating() -> AsyncIterator[None]:
    async def beat() -> None:
        while True:
            activity.heartbeat()
            await asyncio.sleep(HEARTBEAT_EVERY.total_seconds())

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()


def pick_window(cfg: PlantConfig, job: ShiftSummaryJob, now: datetime) -> ShiftWindow | None:
    cal = cfg.calendar
    if job.shift is not None and job.day is not None:
        return window(cal, cal.shift(job.shift), job.day)
    if job.shift is not None or job.day is not None:
        raise ValueError("give both the shift and the day, or neither")
    if job.scheduled_at is not None:
        end = job.scheduled_at - job.grace
        found = windows_between(cal, end - MATCH_TOLERANCE, end + MATCH_TOLERANCE)
        return found[-1] if found else None
    return last_ended(cal, now, within=timedelta(days=8))


class BatchActivities:
    def __init__(self, plants: dict[str, PlantConfig], db: Database, exports_root: Path) -> None:
        self.plants = plants
        self.db = db
        self.exports_root = exports_root

    def target(self, cfg: PlantConfig) -> ExportTarget:
        return cfg.exports or DirectoryExport(path=str(self.exports_root / cfg.plant))

    @activity.defn(name=SHIFT_SUMMARY_ACTIVITY)
    async def shift_summary(self, job: ShiftSummaryJob) -> ShiftSummaryResult:
        async with heartbeating():
            return await self._shift_summary(job)

    async def _shift_summary(self, job: ShiftSummaryJob) -> ShiftSummaryResult:
        cfg = self.plants.get(job.plant)
        if cfg is None or not cfg.shifts:
            raise ApplicationError(f"plant {job.plant} has no plant file with `shifts` on this worker",
                                   type="ConfigurationError", non_retryable=True)
        try:
            win = pick_window(cfg, job, datetime.now(UTC))
        except (KeyError, ValueError) as err:
            raise ApplicationError(str(err), type="ConfigurationError", non_retryable=True) from err
        if win is None:
            return ShiftSummaryResult(plant=job.plant, skipped="no worked shift ended then (day off or holiday)")
        events = [e for e in await accepted_events(self.db, cfg, win.start, win.end) if e.plant == cfg.plant]
        confirmations, downtimes = facts_from_events(events)
        summary = summarize(
            plant=cfg.plant, timezone=cfg.timezone, window=win,
            ideal_cycle_times={wc.code: wc.ideal_cycle_time_s for wc in cfg.work_centers},
            confirmations=confirmations, downtimes=downtimes,
        )
        try:
            docs = shift_documents(summary)
        except InvalidB2MML as err:
            raise ApplicationError(str(err), type=INVALID_B2MML, non_retryable=True) from err
        written = await export(self.target(cfg), docs)
        activity.logger.info("shift summary %s %s: %s", cfg.plant, win.key, ", ".join(w.location for w in written))
        return ShiftSummaryResult(
            plant=cfg.plant, shift=win.shift, day=win.plant_day, content_hash=summary.content_hash,
            written=[w.location for w in written], new=[w.location for w in written if w.new],
            orders=summary.orders,
        )

    def all(self) -> list[object]:
        return [self.shift_summary]
