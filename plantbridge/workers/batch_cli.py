"""`plantbridge batch`: the batch lane's schedules from a terminal.

- `list` — each schedule (`{job}:{plant}`), paused or not, its last and next runs;
- `run JOB --plant P [--shift S --date D]` — run the job's workflow now, wait, print what it wrote
  (`run audit-archive`: the store's archive, no plant). `run shift-summary` without `--shift/--date`
  summarises the last shift that ended and the shift running now up to now (its documents are named
  `…_{shift}-so-far_…`, marked `in_progress`), so what was just produced is in a document;
- `backfill JOB --plant P --from T --to T` — the schedule's runs for every firing time in the range;
- `pause JOB --plant P` / `unpause JOB --plant P`.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta

import typer
from rich.console import Console
from rich.table import Table
from temporalio.client import ScheduleBackfill, ScheduleOverlapPolicy
from temporalio.common import WorkflowIDReusePolicy

from plantbridge.canonical.batch_config import JOBS
from plantbridge.canonical.batch_jobs import (
    AUDIT_ARCHIVE_JOB,
    AUDIT_ARCHIVE_SCHEDULE,
    AUDIT_ARCHIVE_WORKFLOW,
    MASTERDATA_CHECK_JOB,
    MASTERDATA_CHECK_WORKFLOW,
    SHIFT_SUMMARY_JOB,
    SHIFT_SUMMARY_WORKFLOW,
    AuditArchiveRequest,
    AuditArchiveResult,
    MasterDataCheckRequest,
    ShiftExport,
    ShiftSummaryRequest,
    ShiftSummaryResult,
    manual_run_id,
    schedule_id,
)
from plantbridge.client import connect
from plantbridge.workers.settings import Settings

batch_app = typer.Typer(no_args_is_help=True, help="scheduled batch jobs: shift summaries (B2MML + OEE), audit archive")
console = Console()
TEMPORAL = typer.Option(None, "--temporal", help="Temporal frontend host:port (PLANTBRIDGE_TEMPORAL_ADDRESS)")


# Jobs of the whole store (one schedule, no plant) beside the per-plant JOBS.
STORE_JOBS = (AUDIT_ARCHIVE_JOB,)


def _job(job: str) -> str:
    if job not in JOBS and job not in STORE_JOBS:
        raise typer.BadParameter(f"unknown job {job!r}; known: {', '.join((*JOBS, *STORE_JOBS))}")
    return job


def _schedule_id(job: str, plant: str | None) -> str:
    if _job(job) in STORE_JOBS:
        return AUDIT_ARCHIVE_SCHEDULE
    if plant is None:
        raise typer.BadParameter(f"{job} runs per plant: give --plant")
    return schedule_id(job, plant)


async def _client(temporal: str | None):  # type: ignore[no-untyped-def]
    s = Settings.from_env(temporal_address=temporal)
    return await connect(s.temporal_address, s.namespace), s


@batch_app.command("list")
def list_(temporal: str = TEMPORAL) -> None:
    """Every batch schedule with its state, last run and next run."""

    async def go() -> None:
        client, _ = await _client(temporal)
        table = Table("schedule", "paused", "last run", "next run", "note")
        async for entry in await client.list_schedules():
            if not any(entry.id.startswith(f"{j}:") for j in JOBS) and entry.id not in STORE_JOBS:
                continue
            d = await client.get_schedule_handle(entry.id).describe()
            last = d.info.recent_actions[-1].scheduled_at.isoformat() if d.info.recent_actions else "-"
            nxt = d.info.next_action_times[0].isoformat() if d.info.next_action_times else "-"
            table.add_row(entry.id, "yes" if d.schedule.state.paused else "no", last, nxt, d.schedule.state.note or "")
        console.print(table)

    asyncio.run(go())


@batch_app.command()
def run(
    job: str = typer.Argument(..., help="job name: shift-summary (per plant) or audit-archive"),
    plant: str = typer.Option(None, "--plant", help="the plant (jobs per plant)"),
    shift: str = typer.Option(None, "--shift", help="shift name (with --date); default: the last shift that ended "
                                                    "and the running one so far"),
    day: str = typer.Option(None, "--date", help="production day YYYY-MM-DD (with --shift)"),
    temporal: str = TEMPORAL,
) -> None:
    """Run the job's workflow now, wait for it and print what it wrote."""
    _job(job)
    if (shift is None) != (day is None):
        raise typer.BadParameter("give --shift and --date together, or neither")
    the_day = date.fromisoformat(day) if day else None
    if job == AUDIT_ARCHIVE_JOB:
        _run_audit_archive(temporal)
        return
    _schedule_id(job, plant)
    if job == MASTERDATA_CHECK_JOB:
        _run_masterdata_check(plant, temporal)
        return

    async def go() -> ShiftSummaryResult:
        client, s = await _client(temporal)
        req = ShiftSummaryRequest(plant=plant, shift=shift, day=the_day)
        result: ShiftSummaryResult = await client.execute_workflow(
            SHIFT_SUMMARY_WORKFLOW, req, id=manual_run_id(SHIFT_SUMMARY_JOB, plant, the_day, shift),
            task_queue=s.task_queue, result_type=ShiftSummaryResult, execution_timeout=timedelta(hours=1),
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        )
        return result

    result = asyncio.run(go())
    if result.skipped:
        console.print(f"nothing to do: {result.skipped}")
        return
    for one in result.shifts or [ShiftExport(shift=result.shift or "", day=result.day or date.min,
                                             content_hash=result.content_hash or "", written=result.written,
                                             new=result.new, orders=result.orders)]:
        so_far = " (in progress, so far)" if one.in_progress else ""
        console.print(f"shift {one.shift} of {one.day}{so_far}, plant {result.plant}: orders "
                      f"{', '.join(one.orders) or '-'}")
        for path in one.written:
            console.print(f"  {'new ' if path in one.new else 'same'} {path}", soft_wrap=True)


def _run_masterdata_check(plant: str, temporal: str | None) -> None:
    from plantbridge.batch.masterdata import MasterDataReport

    async def go() -> MasterDataReport:
        client, s = await _client(temporal)
        result: MasterDataReport = await client.execute_workflow(
            MASTERDATA_CHECK_WORKFLOW, MasterDataCheckRequest(plant=plant), id=f"{MASTERDATA_CHECK_JOB}:{plant}:manual",
            task_queue=s.task_queue, result_type=MasterDataReport, execution_timeout=timedelta(minutes=30),
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        )
        return result

    r = asyncio.run(go())
    mes = "checked" if r.mes_checked else "not checked"
    extra = "".join(f", {what} checked" for what, done in (("ERP work-center list", r.erp_catalogue_checked),
                                                             ("WMS locations", r.wms_checked)) if done)
    console.print(f"master data of plant {r.plant}: MES {mes}{extra}, ERP work centers of running orders: "
                  f"{', '.join(r.erp_work_centers) or '-'}{'; ' + r.error if r.error else ''}")
    for f in r.findings:
        console.print(f"  {f.problem} {f.kind} {f.code} ({f.system}): {f.detail}")
    if not r.findings:
        console.print("  no unmapped or stale codes")
    console.print(f"  report: {r.written}", soft_wrap=True)


def _run_audit_archive(temporal: str | None) -> None:
    async def go() -> AuditArchiveResult:
        client, s = await _client(temporal)
        result: AuditArchiveResult = await client.execute_workflow(
            AUDIT_ARCHIVE_WORKFLOW, AuditArchiveRequest(), id=f"{AUDIT_ARCHIVE_JOB}:manual",
            task_queue=s.task_queue, result_type=AuditArchiveResult, execution_timeout=timedelta(hours=6),
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        )
        return result

    r = asyncio.run(go())
    console.print(f"audit archive as of {r.as_of.isoformat()}: audit rows before {r.audit_cutoff.isoformat()}, "
                  f"inbox rows before {r.inbox_cutoff.isoformat()}")
    for table, count in sorted(r.rows.items()):
        console.print(f"  archived {count} {table} rows")
    for path in r.files:
        console.print(f"  {'new ' if path in r.new else 'same'} {path}", soft_wrap=True)
    if r.dead_letters:
        console.print(f"  dead letters (waited past the TTL): inbox {', '.join(map(str, r.dead_letters))}")


@batch_app.command()
def backfill(
    job: str = typer.Argument(...),
    plant: str = typer.Option(None, "--plant"),
    start: datetime = typer.Option(..., "--from", help="start (ISO 8601 with offset)"),
    end: datetime = typer.Option(..., "--to", help="end (ISO 8601 with offset)"),
    temporal: str = TEMPORAL,
) -> None:
    """Run the schedule for every firing time in [from, to); already exported shifts write nothing new."""

    async def go() -> None:
        client, _ = await _client(temporal)
        await client.get_schedule_handle(_schedule_id(job, plant)).backfill(
            ScheduleBackfill(start_at=start, end_at=end, overlap=ScheduleOverlapPolicy.ALLOW_ALL))

    asyncio.run(go())
    console.print(f"backfill of {_schedule_id(job, plant)} from {start} to {end} requested")


def _pause(job: str, plant: str | None, temporal: str | None, paused: bool) -> None:
    async def go() -> None:
        client, _ = await _client(temporal)
        handle = client.get_schedule_handle(_schedule_id(job, plant))
        if paused:
            await handle.pause(note="paused with plantbridge batch pause")
        else:
            await handle.unpause(note="unpaused with plantbridge batch unpause")

    asyncio.run(go())
    console.print(f"{_schedule_id(job, plant)} {'paused' if paused else 'unpaused'}")


@batch_app.command()
def pause(job: str = typer.Argument(...), plant: str = typer.Option(None, "--plant"),
          temporal: str = TEMPORAL) -> None:
    """Pause the job's schedule for the plant."""
    _pause(job, plant, temporal, True)


@batch_app.command()
def unpause(job: str = typer.Argument(...), plant: str = typer.Option(None, "--plant"),
            temporal: str = TEMPORAL) -> None:
    """Unpause the job's schedule for the plant."""
    _pause(job, plant, temporal, False)
