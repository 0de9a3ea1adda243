"""`plantbridge status`, batch part: each batch schedule's last run, outcome and next run (from the
Temporal schedule descriptions), and the last master-data report per plant (unmapped/stale codes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from rich.console import Console
from rich.table import Table
from temporalio.client import Client, ScheduleActionExecutionStartWorkflow
from temporalio.service import RPCError

from plantbridge.batch.masterdata import Finding, MasterDataReport
from plantbridge.canonical.batch_config import JOBS
from plantbridge.canonical.batch_jobs import AUDIT_ARCHIVE_SCHEDULE, MASTERDATA_CHECK_JOB, MASTERDATA_CHECK_WORKFLOW


@dataclass
class JobStatus:
    schedule: str
    paused: bool
    last_run: datetime | None
    outcome: str
    next_run: datetime | None


@dataclass
class BatchStatus:
    jobs: list[JobStatus] = field(default_factory=list)
    masterdata: dict[str, MasterDataReport] = field(default_factory=dict)


def _ours(schedule: str, plant: str | None) -> bool:
    if schedule == AUDIT_ARCHIVE_SCHEDULE:
        return plant is None
    job, _, p = schedule.partition(":")
    return job in JOBS and (plant is None or p == plant)


async def collect_batch_status(client: Client, *, plant: str | None = None) -> BatchStatus:
    out = BatchStatus()
    ids = sorted([e.id async for e in await client.list_schedules() if _ours(e.id, plant)])
    for sid in ids:
        d = await client.get_schedule_handle(sid).describe()
        last = d.info.recent_actions[-1] if d.info.recent_actions else None
        outcome = "-"
        if last is not None and isinstance(last.action, ScheduleActionExecutionStartWorkflow):
            try:
                wf = await client.get_workflow_handle(last.action.workflow_id, run_id=last.action.first_execution_run_id
                                                      ).describe()
                outcome = wf.status.name.lower() if wf.status is not None else "-"
            except RPCError:
                outcome = "unknown (history gone)"
        out.jobs.append(JobStatus(sid, d.schedule.state.paused, last.scheduled_at if last else None, outcome,
                                  d.info.next_action_times[0] if d.info.next_action_times else None))
    query = f"WorkflowType = '{MASTERDATA_CHECK_WORKFLOW}' AND ExecutionStatus = 'Completed'"
    if plant is not None:
        query += f" AND WorkflowId STARTS_WITH '{MASTERDATA_CHECK_JOB}:{plant}'"
    latest: dict[str, tuple[datetime, str, str]] = {}
    async for ex in client.list_workflows(query, limit=200):
        p = ex.id.split(":")[1] if ex.id.count(":") >= 1 else ""
        closed = ex.close_time or ex.start_time
        if p and (p not in latest or closed > latest[p][0]):
            latest[p] = (closed, ex.id, ex.run_id or "")
    for p, (_, wid, rid) in sorted(latest.items()):
        report: MasterDataReport = await client.get_workflow_handle(
            wid, run_id=rid or None, result_type=MasterDataReport).result()
        out.masterdata[p] = report
    return out


def _t(at: datetime | None) -> str:
    return at.isoformat(timespec="seconds") if at else "-"


def print_batch_status(status: BatchStatus, console: Console) -> None:
    if status.jobs:
        table = Table(title="batch jobs")
        for col in ("schedule", "paused", "last run", "outcome", "next run"):
            table.add_column(col)
        for j in status.jobs:
            table.add_row(j.schedule, "yes" if j.paused else "no", _t(j.last_run), j.outcome, _t(j.next_run))
        console.print(table)
    rows: list[tuple[str, datetime, Finding]] = [
        (p, r.checked_at, f) for p, r in sorted(status.masterdata.items()) for f in r.findings]
    if status.masterdata:
        table = Table(title="master data (last check)")
        for col in ("plant", "checked", "problem", "kind", "code", "system", "detail"):
            table.add_column(col)
        for p, r in sorted(status.masterdata.items()):
            if not r.findings:
                table.add_row(p, _t(r.checked_at), "ok", "-", "-", "-", r.error or "no unmapped or stale codes")
        for p, at, f in rows:
            table.add_row(p, _t(at), f.problem, f.kind, f.code, f.system, f.detail)
        console.print(table)
