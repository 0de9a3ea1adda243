"""Temporal Schedules of the batch lane, kept in step with the plant files.

One schedule per plant and job, id `{job}:{plant}` (see canonical/batch_jobs.py). When the worker
starts, `sync_schedules` creates the missing ones, updates those whose definition changed and
deletes those whose job (or plant file) is gone; running it twice changes nothing. Policies:
overlap SKIP (a shift summary still running is not started twice), a catch-up window from the
plant file (missed runs after an outage are made up within it). Pause, trigger and backfill work
from the Temporal UI's Schedules page and from `plantbridge batch`.

`shift-summary:{plant}` fires, in the plant's time zone, at each shift's end plus the grace period
on the days that end falls on (a night shift of a Friday ends on Saturday).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError, RPCStatusCode

from plantbridge.canonical.batch_config import JOBS
from plantbridge.canonical.batch_jobs import (
    AUDIT_ARCHIVE_SCHEDULE,
    AUDIT_ARCHIVE_WORKFLOW,
    MASTERDATA_CHECK_JOB,
    MASTERDATA_CHECK_WORKFLOW,
    SHIFT_SUMMARY_JOB,
    SHIFT_SUMMARY_WORKFLOW,
    AuditArchiveRequest,
    MasterDataCheckRequest,
    ShiftSummaryRequest,
    schedule_id,
)
from plantbridge.canonical.plant_config import PlantConfig
from plantbridge.canonical.plant_time import WEEKDAYS

log = logging.getLogger("plantbridge.schedules")
# Temporal numbers weekdays from Sunday = 0.
_TEMPORAL_DOW = {d: (i + 1) % 7 for i, d in enumerate(WEEKDAYS)}


def shift_end_calendars(cfg: PlantConfig) -> list[ScheduleCalendarSpec]:
    """One calendar entry per shift: its end + grace, on the weekdays that instant falls on."""
    out = []
    for s in cfg.shifts:
        fire = datetime.combine(datetime(2000, 1, 3).date(), s.end) + cfg.batch.grace  # a Monday
        days_later = (fire.date() - datetime(2000, 1, 3).date()).days + (1 if s.crosses_midnight else 0)
        days = sorted({(_TEMPORAL_DOW[d] + days_later) % 7 for d in cfg.working_days})
        t: time = fire.time()
        out.append(ScheduleCalendarSpec(
            second=[ScheduleRange(t.second)], minute=[ScheduleRange(t.minute)], hour=[ScheduleRange(t.hour)],
            day_of_week=[ScheduleRange(d) for d in days], comment=f"end of shift {s.name} + {cfg.batch.grace}",
        ))
    return out


def desired(cfg: PlantConfig, task_queue: str) -> dict[str, Schedule]:
    """The schedules the plant file asks for, by id."""
    wanted: dict[str, Schedule] = {}
    if SHIFT_SUMMARY_JOB in cfg.batch.jobs:
        sid = schedule_id(SHIFT_SUMMARY_JOB, cfg.plant)
        wanted[sid] = Schedule(
            action=ScheduleActionStartWorkflow(
                SHIFT_SUMMARY_WORKFLOW, ShiftSummaryRequest(plant=cfg.plant, grace=cfg.batch.grace),
                id=sid, task_queue=task_queue, execution_timeout=timedelta(hours=6),
            ),
            spec=ScheduleSpec(calendars=shift_end_calendars(cfg), time_zone_name=cfg.timezone),
            policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=cfg.batch.catchup_window),
            state=ScheduleState(note=f"Shift summary (B2MML + OEE) of plant {cfg.plant}"
                                     f"{' ' + cfg.name if cfg.name else ''}, at each shift end + {cfg.batch.grace}"),
        )
    if MASTERDATA_CHECK_JOB in cfg.batch.jobs:
        sid = schedule_id(MASTERDATA_CHECK_JOB, cfg.plant)
        wanted[sid] = Schedule(
            action=ScheduleActionStartWorkflow(MASTERDATA_CHECK_WORKFLOW, MasterDataCheckRequest(plant=cfg.plant),
                                               id=sid, task_queue=task_queue, execution_timeout=timedelta(hours=1)),
            spec=ScheduleSpec(calendars=[ScheduleCalendarSpec(
                second=[ScheduleRange(0)], minute=[ScheduleRange(MASTERDATA_CHECK_AT.minute)],
                hour=[ScheduleRange(MASTERDATA_CHECK_AT.hour)], comment="daily")], time_zone_name=cfg.timezone),
            policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=cfg.batch.catchup_window),
            state=ScheduleState(note=f"Master-data check of plant {cfg.plant}"
                                     f"{' ' + cfg.name if cfg.name else ''}: unmapped and stale codes"),
        )
    return wanted


# `masterdata-check:{plant}` runs daily at this plant-local time, before the early shift.
MASTERDATA_CHECK_AT = time(5, 0)
# `audit-archive` runs daily at this time (UTC), for the whole store.
AUDIT_ARCHIVE_AT = time(2, 30)


def audit_archive_schedule(task_queue: str) -> Schedule:
    """The store's daily audit archive (one schedule, not per plant)."""
    return Schedule(
        action=ScheduleActionStartWorkflow(AUDIT_ARCHIVE_WORKFLOW, AuditArchiveRequest(), id=AUDIT_ARCHIVE_SCHEDULE,
                                           task_queue=task_queue, execution_timeout=timedelta(hours=6)),
        spec=ScheduleSpec(calendars=[ScheduleCalendarSpec(
            second=[ScheduleRange(0)], minute=[ScheduleRange(AUDIT_ARCHIVE_AT.minute)],
            hour=[ScheduleRange(AUDIT_ARCHIVE_AT.hour)], comment="daily")], time_zone_name="UTC"),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=timedelta(days=1)),
        state=ScheduleState(note="Audit archive: old audit and inbox rows to JSON Lines + gzip archives; "
                                 "waiting inbox rows past the TTL to dead letters"),
    )


@dataclass
class SyncReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


def _same(a: Schedule, b: Schedule) -> bool:
    """Compare what we own: spec calendars and zone, action queue and id, policies (not the state:
    pausing is the operator's)."""
    try:
        assert isinstance(a.action, ScheduleActionStartWorkflow) and isinstance(b.action, ScheduleActionStartWorkflow)
        return (
            [_cal(c) for c in a.spec.calendars] == [_cal(c) for c in b.spec.calendars]
            and a.spec.time_zone_name == b.spec.time_zone_name
            and a.action.task_queue == b.action.task_queue and a.action.id == b.action.id
            and a.policy.overlap == b.policy.overlap and a.policy.catchup_window == b.policy.catchup_window
        )
    except AssertionError:
        return False


def _cal(c: ScheduleCalendarSpec) -> tuple[object, ...]:
    return tuple(tuple(x) for x in (c.second, c.minute, c.hour, c.day_of_month, c.month, c.year, c.day_of_week))


async def _existing_ids(client: Client) -> set[str]:
    found: set[str] = set()
    async for entry in await client.list_schedules():
        if any(entry.id.startswith(f"{job}:") for job in JOBS):
            found.add(entry.id)
    return found


async def sync_schedules(client: Client, plants: dict[str, PlantConfig], task_queue: str, *,
                         audit_archive: bool = False) -> SyncReport:
    """Create, update or delete the batch schedules so they match the plant files (and, with
    `audit_archive`, the store's daily `audit-archive`). Idempotent."""
    report = SyncReport()
    wanted: dict[str, Schedule] = {}
    for cfg in plants.values():
        wanted.update(desired(cfg, task_queue))
    if audit_archive:
        wanted[AUDIT_ARCHIVE_SCHEDULE] = audit_archive_schedule(task_queue)
    for sid, sched in sorted(wanted.items()):
        try:
            await client.create_schedule(sid, sched)
            report.created.append(sid)
            continue
        except ScheduleAlreadyRunningError:
            pass
        handle = client.get_schedule_handle(sid)
        current = (await handle.describe()).schedule
        if _same(current, sched):
            report.unchanged.append(sid)
            continue

        def _update(_: ScheduleUpdateInput, new: Schedule = sched, old: Schedule = current) -> ScheduleUpdate:
            new.state.paused = old.state.paused  # an operator's pause (and its note) survives a restart
            new.state.note = old.state.note
            return ScheduleUpdate(schedule=new)

        await handle.update(_update)
        report.updated.append(sid)
    for sid in sorted(await _existing_ids(client) - set(wanted)):
        plant = sid.split(":", 1)[1]
        if plant in plants:  # a job left this plant's file (a plant without a file here is not ours)
            try:
                await client.get_schedule_handle(sid).delete()
                report.deleted.append(sid)
            except RPCError as err:
                if err.status != RPCStatusCode.NOT_FOUND:
                    raise
    if report.created or report.updated or report.deleted:
        log.info("schedules: created %s, updated %s, deleted %s", report.created, report.updated, report.deleted)
    return report
