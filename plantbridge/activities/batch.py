"""Batch activities: the shift summary (facts from the store, OEE, B2MML, export).

Idempotent: the documents are named by the content hash of the summary, and an export target
holds each name once. Which shift: the one given, or the one that ended `grace` before the
schedule fired, or (by hand, without a shift) the last that ended.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import httpx
from pydantic import ValidationError
from temporalio import activity
from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.exceptions import ApplicationError

from plantbridge.activities.batch_metrics import count_dead_letters, metered
from plantbridge.batch.archive import DeadLetter, archive_store, dead_letter_waiting, last_cutoff
from plantbridge.batch.b2mml import InvalidB2MML
from plantbridge.batch.export import Document, export, shift_documents
from plantbridge.batch.machine_facts import machine_facts, read_rollups
from plantbridge.batch.masterdata import MasterDataReport, compare, read_mes
from plantbridge.batch.masterdata_sources import read_odoo_work_centers, read_wms_locations
from plantbridge.batch.sources import LATE_ARRIVAL, accepted_events, facts_from_events
from plantbridge.batch.summary import summarize
from plantbridge.canonical.batch_config import DirectoryExport, ExportTarget, RetentionPolicy
from plantbridge.canonical.batch_jobs import (
    AUDIT_ARCHIVE_ACTIVITY,
    AUDIT_ARCHIVE_JOB,
    DEAD_LETTER_ACTION,
    INVALID_B2MML,
    MASTERDATA_CHECK_ACTIVITY,
    MASTERDATA_CHECK_JOB,
    ORDER_WORKFLOW,
    SHIFT_ARCHIVED,
    SHIFT_SUMMARY_ACTIVITY,
    SHIFT_SUMMARY_JOB,
    AuditArchiveJob,
    AuditArchiveResult,
    DeadLetterAlert,
    MasterDataCheckRequest,
    ShiftExport,
    ShiftSummaryJob,
    ShiftSummaryResult,
    dead_letter_order,
)
from plantbridge.canonical.plant_config import PlantConfig
from plantbridge.canonical.plant_time import ShiftWindow, last_ended, shift_at, so_far, window, windows_between
from plantbridge.connectors.errors import ConnectorError
from plantbridge.store.audit import AuditTrail
from plantbridge.store.db import Database
from plantbridge.store.inbox import InboxMessage

T = TypeVar("T")
# A schedule fires at shift end + grace; its run may start a little later (jitter, catch-up).
MATCH_TOLERANCE = timedelta(minutes=1)
# The order sagas' work centers (search attribute of workflows/search_attributes.py).
WORK_CENTER = SearchAttributeKey.for_keyword_list("WorkCenter")
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


def pick_windows(cfg: PlantConfig, job: ShiftSummaryJob, now: datetime) -> list[tuple[ShiftWindow, bool]]:
    """The shift windows to summarise, oldest first, each with whether it is still running.

    A named shift and day: that one (cut at `now` and in progress while it runs). A schedule's run: the
    shift that ended `grace` before it fired. By hand with neither: the last shift that ended, and the
    shift running now cut at `now` (in progress), so a run right after work was done (the demo) covers
    it even across a shift change."""
    cal = cfg.calendar
    if job.shift is not None and job.day is not None:
        named = window(cal, cal.shift(job.shift), job.day)
        return [(so_far(named, now), True)] if named.start <= now < named.end else [(named, False)]
    if job.shift is not None or job.day is not None:
        raise ValueError("give both the shift and the day, or neither")
    if job.scheduled_at is not None:
        end = job.scheduled_at - job.grace
        found = windows_between(cal, end - MATCH_TOLERANCE, end + MATCH_TOLERANCE)
        return [(found[-1], False)] if found else []
    picked: list[tuple[ShiftWindow, bool]] = []
    last = last_ended(cal, now, within=timedelta(days=8))
    if last is not None:
        picked.append((last, False))
    running = shift_at(cal, now)
    if running is not None:
        picked.append((so_far(running, now), True))
    return picked


class BatchActivities:
    def __init__(self, plants: dict[str, PlantConfig], db: Database, exports_root: Path,
                 retention: RetentionPolicy | None = None) -> None:
        self.plants = plants
        self.db = db
        self.exports_root = exports_root
        self.retention = retention or RetentionPolicy()

    def target(self, cfg: PlantConfig) -> ExportTarget:
        return cfg.exports or DirectoryExport(path=str(self.exports_root / cfg.plant))

    def telemetry_root(self, cfg: PlantConfig) -> Path:
        """Where the gateway archives the plant's edge rollups (as `gateway/server.py` places them)."""
        if isinstance(cfg.exports, DirectoryExport):
            return Path(cfg.exports.path) / "telemetry"
        return self.exports_root / cfg.plant / "telemetry"

    @activity.defn(name=SHIFT_SUMMARY_ACTIVITY)
    async def shift_summary(self, job: ShiftSummaryJob) -> ShiftSummaryResult:
        async with heartbeating(), metered(SHIFT_SUMMARY_JOB, job.plant) as run:
            result = await self._shift_summary(job)
            run.written, run.new, run.skipped = result.written, result.new, result.skipped is not None
            return result

    async def _shift_summary(self, job: ShiftSummaryJob) -> ShiftSummaryResult:
        cfg = self.plants.get(job.plant)
        if cfg is None or not cfg.shifts:
            raise ApplicationError(f"plant {job.plant} has no plant file with `shifts` on this worker",
                                   type="ConfigurationError", non_retryable=True)
        try:
            picked = pick_windows(cfg, job, datetime.now(UTC))
        except (KeyError, ValueError) as err:
            raise ApplicationError(str(err), type="ConfigurationError", non_retryable=True) from err
        if not picked:
            return ShiftSummaryResult(plant=job.plant, skipped="no worked shift ended then (day off or holiday)")
        shifts = [await self._one_shift(cfg, win, in_progress) for win, in_progress in picked]
        last = shifts[-1]
        return ShiftSummaryResult(
            plant=cfg.plant, shift=last.shift, day=last.day, content_hash=last.content_hash,
            written=[w for s in shifts for w in s.written], new=[w for s in shifts for w in s.new],
            orders=sorted({o for s in shifts for o in s.orders}), shifts=shifts,
        )

    async def _one_shift(self, cfg: PlantConfig, win: ShiftWindow, in_progress: bool) -> ShiftExport:
        await self._not_archived(cfg, win)
        events = [e for e in await accepted_events(self.db, cfg, win.start, win.end) if e.plant == cfg.plant]
        confirmations, downtimes = facts_from_events(events)
        rollups = await asyncio.to_thread(read_rollups, self.telemetry_root(cfg), win.start, win.end)
        summary = summarize(
            plant=cfg.plant, timezone=cfg.timezone, window=win,
            ideal_cycle_times={wc.code: wc.ideal_cycle_time_s for wc in cfg.work_centers},
            confirmations=confirmations, downtimes=downtimes, in_progress=in_progress,
            machines=machine_facts(rollups, win),
        )
        try:
            docs = shift_documents(summary)
        except InvalidB2MML as err:
            raise ApplicationError(str(err), type=INVALID_B2MML, non_retryable=True) from err
        written = await export(self.target(cfg), docs)
        activity.logger.info("shift summary %s %s%s: %s", cfg.plant, win.key, " (so far)" if in_progress else "",
                             ", ".join(w.location for w in written))
        return ShiftExport(shift=win.shift, day=win.plant_day, in_progress=in_progress,
                           content_hash=summary.content_hash, written=[w.location for w in written],
                           new=[w.location for w in written if w.new], orders=summary.orders)

    async def _not_archived(self, cfg: PlantConfig, win: ShiftWindow) -> None:
        """Refuse a shift whose plant events (read back to LATE_ARRIVAL before it) the audit archive
        already moved out of the inbox: a summary of what is left would be empty or short, and being
        named by its content it would not even replace the right one later."""
        cutoff = await asyncio.to_thread(last_cutoff, self.exports_root / "archive", InboxMessage.__tablename__)
        reads_from = win.start - LATE_ARRIVAL
        if cutoff is not None and reads_from < cutoff:
            raise ApplicationError(
                f"shift {win.shift} of {win.plant_day} (plant {cfg.plant}, from {win.start.isoformat()}) is older than "
                f"the inbox archive: plant events received before {cutoff.isoformat()} were moved to "
                f"{self.exports_root / 'archive'} by audit-archive, and this summary reads from "
                f"{reads_from.isoformat()}. Nothing was written; summarize only shifts that started after "
                f"{(cutoff + LATE_ARRIVAL).isoformat()}, or lengthen the inbox retention",
                type=SHIFT_ARCHIVED, non_retryable=True)

    @activity.defn(name=AUDIT_ARCHIVE_ACTIVITY)
    async def audit_archive(self, job: AuditArchiveJob) -> AuditArchiveResult:
        async with heartbeating(), metered(AUDIT_ARCHIVE_JOB, None) as run:
            result = await self._audit_archive(job)
            run.written, run.new = result.files, result.new
            return result

    async def _audit_archive(self, job: AuditArchiveJob) -> AuditArchiveResult:
        r = self.retention
        dead = await dead_letter_waiting(self.db, job.as_of - r.waiting_ttl, str(r.waiting_ttl))
        count_dead_letters([d.plant for d in dead])
        audit = AuditTrail(self.db)
        alerts: list[DeadLetterAlert] = []
        for d in dead:
            # The alert: an error in the log, a record in the audit trail, and (by the workflow, through the
            # plant's notifier) a notify.alert for each dead letter of a known plant and order.
            alert = dead_letter_alert(d, r.waiting_ttl)
            if alert is not None:
                alerts.append(alert)
            activity.logger.error("inbox message %s (plant %s, order %s, event %s) waited longer than %s "
                                  "for its order's saga: dead letter", d.id, d.plant, d.order, d.event_id,
                                  r.waiting_ttl)
            await audit.record(workflow_id=AUDIT_ARCHIVE_JOB, plant=d.plant or "", order=d.order or "",
                               actor=AUDIT_ARCHIVE_JOB, action=DEAD_LETTER_ACTION,
                               detail={"inbox_id": d.id, "event_id": d.event_id, "received_at": d.received_at,
                                       "waiting_ttl": str(r.waiting_ttl)},
                               dedup_key=f"{DEAD_LETTER_ACTION}:{d.id}")
        audit_cutoff, inbox_cutoff = job.as_of - r.audit_retention, job.as_of - r.inbox_retention
        files = await archive_store(self.db, self.exports_root / "archive", audit_cutoff=audit_cutoff,
                                    inbox_cutoff=inbox_cutoff)
        rows: dict[str, int] = {}
        for f in files:
            rows[f.table] = rows.get(f.table, 0) + f.rows
        activity.logger.info("audit archive as of %s: %s rows, %s dead letters", job.as_of, rows, len(dead))
        return AuditArchiveResult(as_of=job.as_of, audit_cutoff=audit_cutoff, inbox_cutoff=inbox_cutoff,
                                  files=[f.path for f in files], new=[f.path for f in files if f.new], rows=rows,
                                  dead_letters=[d.id for d in dead], alerts=alerts)

    @activity.defn(name=MASTERDATA_CHECK_ACTIVITY)
    async def masterdata_check(self, req: MasterDataCheckRequest) -> MasterDataReport:
        async with metered(MASTERDATA_CHECK_JOB, req.plant) as run:
            report = await self._masterdata_check(req)
            run.written = [report.written] if report.written else []
            run.new = run.written if report.new else []
            return report

    async def _masterdata_check(self, req: MasterDataCheckRequest) -> MasterDataReport:
        cfg = self.plants.get(req.plant)
        if cfg is None:
            raise ApplicationError(f"plant {req.plant} has no plant file on this worker",
                                   type="ConfigurationError", non_retryable=True)
        now = datetime.now(UTC)
        erp_wcs = await running_order_work_centers(activity.client(), cfg.plant)
        errors: list[str] = []
        mes = await _readable("MES lists", lambda: read_mes(cfg), errors)
        catalogue = await _readable("Odoo work centers", lambda: read_odoo_work_centers(cfg), errors)
        locations = await _readable("WMS locations", lambda: read_wms_locations(cfg), errors)
        report = MasterDataReport(plant=cfg.plant, checked_at=now, mes_checked=mes is not None,
                                  erp_work_centers=sorted(erp_wcs), error="; ".join(errors) or None,
                                  erp_catalogue_checked=catalogue is not None, wms_checked=locations is not None,
                                  findings=compare(cfg, mes, erp_wcs, erp_catalogue=catalogue,
                                                   wms_locations=locations))
        stem = f"masterdata_{cfg.plant}_{now.date().isoformat()}_{report.content_hash()[:16]}"
        body = report.model_dump_json(indent=2).encode() + b"\n"
        (written,) = await export(self.target(cfg), [Document(f"{stem}.json", body, "application/json",
                                                                report.content_hash())])
        report.written, report.new = written.location, written.new
        for f in report.findings:
            activity.logger.warning("master data %s: %s %s %s (%s)", cfg.plant, f.problem, f.kind, f.code, f.detail)
        return report

    def all(self) -> list[object]:
        return [self.shift_summary, self.audit_archive, self.masterdata_check]


async def _readable(what: str, reading: Callable[[], Awaitable[T]], errors: list[str]) -> T | None:
    """What a system lists; after the activity's first attempts an unreadable system is reported
    (`errors`) rather than failing the whole check."""
    try:
        return await reading()
    except (httpx.HTTPError, ConnectorError, KeyError, ValueError) as err:
        if activity.info().attempt < 3:
            raise  # transient until proven otherwise; the report says so after the retries
        errors.append(f"{what} unreadable: {err}")
        return None


def dead_letter_alert(d: DeadLetter, ttl: timedelta) -> DeadLetterAlert | None:
    """The alert of a dead letter, when it names a plant and an order the notifier can be told about."""
    if not d.plant or not d.order:
        return None
    alert = DeadLetterAlert(
        inbox_id=d.id, plant=d.plant, order=d.order, event_id=d.event_id,
        message=(f"plant event {d.event_id or '?'} for order {d.order} (plant {d.plant}, inbox {d.id}, received "
                 f"{d.received_at}) waited longer than {ttl} for the order's saga and is now a dead letter; "
                 f"`plantbridge replay` re-drives it once the order exists"))
    try:
        dead_letter_order(alert)
    except ValidationError:
        return None
    return alert


async def running_order_work_centers(client: Client, plant: str) -> set[str]:
    """ERP work centers of the plant's running order sagas (their `WorkCenter` search attribute)."""
    found: set[str] = set()
    query = f"WorkflowType = '{ORDER_WORKFLOW}' AND Plant = '{plant}' AND ExecutionStatus = 'Running'"
    async for wf in client.list_workflows(query):
        found.update(wf.typed_search_attributes.get(WORK_CENTER) or [])
    return found
