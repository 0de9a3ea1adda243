"""`plantbridge status`: the business monitor a plant manager asks for, per plant.

From Temporal visibility (search attributes) and the sagas' `summary` query: orders by state,
the ERP behind each plant (`ErpSystem`: sap_s4, odoo, ...), unresolved holds and their age, open
exceptions and their age; for an Odoo plant its release poller (`odoo-poller:{plant}`, its cursor).
From the store: rejected postings, postings still unconfirmed by the target system (delayed) and
failed releases (SAP business events / IDocs and Odoo webhooks that ended as dead letters). The same
report feeds the business gauges on the metrics endpoint.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from rich.console import Console
from rich.table import Table
from sqlalchemy import select
from temporalio.client import Client

from plantbridge.client import WORKFLOW_TYPE, order_summary
from plantbridge.store.db import Database
from plantbridge.store.inbox import InboxMessage
from plantbridge.store.models import LedgerEntry
from plantbridge.workers.settings import Settings
from plantbridge.workflows import search_attributes as sa
from plantbridge.workflows.odoo_poller import POLLER_WORKFLOW, PollResult

ODOO_CHANNEL_PREFIX = "odoo:"  # the inbox channel of a plant's Odoo webhook messages (gateway/odoo_intake.py)

MAX_DETAIL_QUERIES = 200


@dataclass
class PlantStatus:
    plant: str
    orders_by_state: Counter[str] = field(default_factory=Counter)
    open_exceptions: int = 0
    oldest_exception_age_s: float = 0.0
    holds_open: int = 0
    oldest_hold_age_s: float = 0.0
    rejected_postings: int = 0
    delayed_postings: int = 0
    failed_releases: int = 0
    unreachable: int = 0
    erp: set[str] = field(default_factory=set)  # ErpSystem of its running orders (a hybrid plant shows two)
    odoo_poller: str | None = None  # Odoo plants: "running", "cursor <write_date>" or "no answer"
    exceptions: list[tuple[str, str, str, float]] = field(default_factory=list)  # order, id, message, age


def _plant_of(workflow_id: str) -> str:
    parts = workflow_id.split(":")
    return parts[1] if len(parts) >= 3 else "?"


async def collect_status(client: Client | None, db: Database | None = None, *, plant: str | None = None,
                         delayed_after: timedelta = timedelta(minutes=30)) -> dict[str, PlantStatus]:
    """The report; without a client (Temporal unreachable) only the store's part, without a db only Temporal's."""
    now = datetime.now(UTC)
    report: dict[str, PlantStatus] = {}
    if client is not None:
        await _temporal_part(client, report, plant, now)
    if db is not None:
        await _store_part(db, report, plant, now, delayed_after)
    return report


async def _temporal_part(client: Client, report: dict[str, PlantStatus], plant: str | None, now: datetime) -> None:
    query = f"WorkflowType='{WORKFLOW_TYPE}' AND ExecutionStatus='Running'"
    if plant:
        query += f" AND Plant='{plant}'"
    detail: list[tuple[str, str]] = []
    async for wf in client.list_workflows(query):
        attrs = wf.typed_search_attributes
        p = attrs.get(sa.PLANT) or _plant_of(wf.id)
        status = report.setdefault(p, PlantStatus(p))
        state = attrs.get(sa.ORDER_STATE) or "unknown"
        status.orders_by_state[state] += 1
        if erp := attrs.get(sa.ERP_SYSTEM):
            status.erp.add(erp)
        if (attrs.get(sa.OPEN_EXCEPTIONS) or 0) > 0 or state == "quality_hold":
            detail.append((p, attrs.get(sa.ORDER_NUMBER) or wf.id.split(":")[-1]))
    for p, order in detail[:MAX_DETAIL_QUERIES]:
        try:
            summary = await order_summary(client, p, order, timeout=timedelta(seconds=3))
        except Exception:  # finished meanwhile, or no worker answers for it: counted by state only
            report[p].unreachable += 1
            continue
        status = report[p]
        if summary.hold is not None:
            status.holds_open += 1
            status.oldest_hold_age_s = max(status.oldest_hold_age_s, (now - summary.hold.since).total_seconds())
        for exc in summary.open_exceptions:
            age = (now - exc.opened_at).total_seconds()
            status.open_exceptions += 1
            status.oldest_exception_age_s = max(status.oldest_exception_age_s, age)
            status.exceptions.append((order, exc.id, exc.message, age))
    await _odoo_pollers(client, report, plant)


async def _store_part(db: Database, report: dict[str, PlantStatus], plant: str | None, now: datetime,
                      delayed_after: timedelta) -> None:
    async with db.sessions() as session:
        # Failed releases: ERP intake messages (SAP business events, IDocs, Odoo webhooks) that ended as
        # dead letters. An Odoo webhook's channel names its plant (`odoo:<plant>`).
        dead = select(InboxMessage.plant, InboxMessage.channel).where(
            InboxMessage.status == "dead", InboxMessage.channel.in_(("sap_event", "sap_idoc"))
            | InboxMessage.channel.startswith(ODOO_CHANNEL_PREFIX))
        for dead_plant, channel in (await session.execute(dead)).all():
            key = dead_plant or (channel.removeprefix(ODOO_CHANNEL_PREFIX) if channel.startswith(
                ODOO_CHANNEL_PREFIX) else "?")
            if plant and key != plant:
                continue
            report.setdefault(key, PlantStatus(key)).failed_releases += 1
        stmt = select(LedgerEntry.workflow_id, LedgerEntry.status, LedgerEntry.updated_at).where(
            LedgerEntry.system == "erp", LedgerEntry.status.in_(("rejected", "started")))
        for wf_id, ledger_status, updated in (await session.execute(stmt)).all():
            p = _plant_of(wf_id)
            if plant and p != plant:
                continue
            status = report.setdefault(p, PlantStatus(p))
            if ledger_status == "rejected":
                status.rejected_postings += 1
            elif updated is not None and now - updated.replace(tzinfo=updated.tzinfo or UTC) > delayed_after:
                status.delayed_postings += 1


async def _odoo_pollers(client: Client, report: dict[str, PlantStatus], plant: str | None) -> None:
    """Each running Odoo release poller: its plant is an Odoo plant, shown with the poller's cursor."""
    query = f"WorkflowType='{POLLER_WORKFLOW}' AND ExecutionStatus='Running'"
    async for wf in client.list_workflows(query):
        p = wf.id.split(":", 1)[-1]
        if plant and p != plant:
            continue
        status = report.setdefault(p, PlantStatus(p))
        status.erp.add("odoo")
        try:
            state = await client.get_workflow_handle(wf.id).query("poller_state", result_type=PollResult,
                                                                  rpc_timeout=timedelta(seconds=3))
        except Exception:  # no worker answers the query: the poller is running, its cursor unknown
            status.odoo_poller = "running (no answer)"
            continue
        status.odoo_poller = f"cursor {state.cursor}" if state.cursor else "running"


async def watch_business_metrics(client: Client, db: Database | None, *, interval_s: float = 15.0) -> None:
    """Publish the report as gauges on the runtime's metrics endpoint, every `interval_s`."""
    meter = client.service_client.config.runtime.metric_meter if client.service_client.config.runtime else None
    if meter is None:
        return
    orders = meter.create_gauge("plantbridge_orders", "running order sagas by plant and state")
    exceptions = meter.create_gauge("plantbridge_open_exceptions", "open exceptions by plant")
    exc_age = meter.create_gauge_float("plantbridge_oldest_exception_age", "age of the oldest open exception", "s")
    holds = meter.create_gauge("plantbridge_holds_open", "quality holds open by plant")
    hold_age = meter.create_gauge_float("plantbridge_oldest_hold_age", "age of the oldest open quality hold", "s")
    rejected = meter.create_gauge("plantbridge_rejected_postings", "ERP postings rejected and not re-posted")
    failed = meter.create_gauge("plantbridge_failed_releases", "ERP releases (SAP events/IDocs, Odoo webhooks) "
                                "that ended as dead letters")
    erp_info = meter.create_gauge("plantbridge_plant_erp", "1 per plant and ERP behind it (sap_s4, odoo, ...)")
    seen: set[tuple[str, str]] = set()
    while True:
        report = await collect_status(client, db)
        current: set[tuple[str, str]] = set()
        for p, st in report.items():
            for state, n in st.orders_by_state.items():
                orders.set(n, {"plant": p, "state": state})
                current.add((p, state))
            exceptions.set(st.open_exceptions, {"plant": p})
            exc_age.set(st.oldest_exception_age_s, {"plant": p})
            holds.set(st.holds_open, {"plant": p})
            hold_age.set(st.oldest_hold_age_s, {"plant": p})
            rejected.set(st.rejected_postings, {"plant": p})
            failed.set(st.failed_releases, {"plant": p})
            for erp in st.erp:
                erp_info.set(1, {"plant": p, "erp": erp})
        for p, state in seen - current:
            orders.set(0, {"plant": p, "state": state})
        seen |= current
        await asyncio.sleep(interval_s)


def _age(seconds: float) -> str:
    if seconds <= 0:
        return "-"
    minutes = int(seconds // 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m{int(seconds % 60):02d}s"


def _unreachable(what: str, err: BaseException) -> str:
    if isinstance(err, TimeoutError):
        return f"{what} does not answer (no answer within 15 s: down, frozen or cut off)"
    text = " ".join(str(err).split())[:200]
    return f"{what} does not answer: {type(err).__name__}" + (f": {text}" if text else "")


async def print_status(settings: Settings, plant: str | None, console: Console) -> bool:
    """Print the report; False when Temporal or the store did not answer (what the other one knows is
    still printed, with the failure named above it)."""
    from sqlalchemy.engine import make_url

    from plantbridge.client import connect

    problems: list[str] = []
    client: Client | None = None
    db: Database | None = None
    try:
        client = await asyncio.wait_for(connect(settings.temporal_address, settings.namespace), 15)
    except Exception as err:  # unreachable, frozen, TLS or auth refused: say so, show the store's part
        problems.append(_unreachable(f"Temporal at {settings.temporal_address}", err))
    try:
        db = await asyncio.wait_for(Database(settings.store_url).init(), 15)
    except Exception as err:
        problems.append(_unreachable(f"the store {make_url(settings.store_url).render_as_string()}", err))
    for problem in problems:
        console.print(f"[bold red]{problem}[/]", highlight=False, soft_wrap=True)
    try:
        report = await collect_status(client, db, plant=plant)
    finally:
        if db is not None:
            await db.close()
    from plantbridge.workers.batch_status import collect_batch_status, print_batch_status

    batch = await collect_batch_status(client, plant=plant) if client is not None else None
    table = Table(title="plantbridge status")
    for col in ("plant", "erp", "orders by state", "open exceptions", "oldest", "holds", "oldest hold",
                "rejected postings", "delayed postings", "failed releases", "release poller"):
        table.add_column(col)
    for p in sorted(report):
        st = report[p]
        states = ", ".join(f"{k} {v}" for k, v in sorted(st.orders_by_state.items())) or "-"
        table.add_row(p, ", ".join(sorted(st.erp)) or "-", states,
                      str(st.open_exceptions), _age(st.oldest_exception_age_s), str(st.holds_open),
                      _age(st.oldest_hold_age_s), str(st.rejected_postings), str(st.delayed_postings),
                      str(st.failed_releases), st.odoo_poller or "-")
    console.print(table)
    rows = [(p, e) for p, st in sorted(report.items()) for e in st.exceptions]
    if rows:
        exc_table = Table(title="open exceptions")
        for col in ("plant", "order", "exception", "age", "message"):
            exc_table.add_column(col)
        for p, (order, exc_id, message, age) in sorted(rows, key=lambda r: -r[1][3]):
            exc_table.add_row(p, order, exc_id, _age(age), message[:100])
        console.print(exc_table)
    if batch is not None:
        print_batch_status(batch, console)
    return not problems
