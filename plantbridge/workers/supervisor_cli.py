"""Supervisor commands: `orders`, `exceptions` (Temporal directly), `keys` and `replay` (the store).

Mount with `app.add_typer(orders_app, name="orders")`, `exceptions_app`, `keys_app` and
`app.command("replay")(replay)`.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from temporalio.client import Client

from plantbridge.canonical.exceptions import ExceptionResolution
from plantbridge.canonical.order import workflow_id
from plantbridge.canonical.saga import SagaState
from plantbridge.client import WORKFLOW_TYPE, connect, order_summary, resolve_exception
from plantbridge.store.api_keys import ROLE_KINDS, ROLES, ApiKeyError, ApiKeys
from plantbridge.store.audit import AuditTrail
from plantbridge.store.db import Database
from plantbridge.workers.settings import Settings

if TYPE_CHECKING:
    from plantbridge.gateway.settings import GatewaySettings
from plantbridge.workflows import search_attributes as sa

console = Console()
orders_app = typer.Typer(no_args_is_help=True, help="Orders as the sagas see them.")
exceptions_app = typer.Typer(no_args_is_help=True, help="Open exceptions and their resolution.")
keys_app = typer.Typer(no_args_is_help=True, help="The gateway's API keys.")

TEMPORAL = typer.Option(None, "--temporal", help="Temporal frontend host:port (PLANTBRIDGE_TEMPORAL_ADDRESS)")
STORE = typer.Option(None, "--store-url", help="SQLAlchemy URL of the store (PLANTBRIDGE_STORE_URL)")


def _settings(temporal: str | None = None, store_url: str | None = None) -> Settings:
    return Settings.from_env(temporal_address=temporal, store_url=store_url)


async def _client(temporal: str | None) -> Client:
    s = _settings(temporal)
    return await connect(s.temporal_address, s.namespace)


def _query(plant: str | None, state: str | None, extra: str = "") -> str:
    parts = [f"WorkflowType = '{WORKFLOW_TYPE}'"]
    if plant:
        parts.append(f"Plant = '{plant.replace(chr(39), '')}'")
    if state:
        parts.append(f"OrderState = '{state.replace(chr(39), '')}'")
    if extra:
        parts.append(extra)
    return " AND ".join(parts)


async def _list(temporal: str | None, query: str) -> list[dict[str, Any]]:
    client = await _client(temporal)
    rows = []
    async for wf in client.list_workflows(query, limit=1000):
        a = wf.typed_search_attributes
        rows.append({"id": wf.id, "plant": a.get(sa.PLANT), "order": a.get(sa.ORDER_NUMBER),
                     "state": a.get(sa.ORDER_STATE), "exceptions": a.get(sa.OPEN_EXCEPTIONS) or 0,
                     "material": a.get(sa.MATERIAL), "status": wf.status.name if wf.status else ""})
    return rows


@orders_app.command("list")
def orders_list(plant: str = typer.Option(None, "--plant"), state: str = typer.Option(None, "--state"),
                temporal: str = TEMPORAL) -> None:
    """Orders by plant and state."""
    rows = asyncio.run(_list(temporal, _query(plant, state)))
    table = Table("plant", "order", "material", "state", "open exc.", "run")
    for r in rows:
        table.add_row(str(r["plant"]), str(r["order"]), str(r["material"]), str(r["state"]), str(r["exceptions"]),
                      r["status"])
    console.print(table)


def _render(s: SagaState) -> None:
    o = s.order
    console.print(Panel(f"[bold]{o.number}[/] plant {o.plant} · {o.material} · {o.quantity.quantity} {o.quantity.uom}"
                        f"\nstate [bold]{s.state.value}[/] · events accepted {s.events_accepted}, "
                        f"rejected {s.events_rejected}, duplicates {s.duplicates}",
                        title=workflow_id(o.plant, o.number)))
    if s.hold is not None:
        console.print(Panel(f"{s.hold.reason}\nsince {s.hold.since.isoformat()}", title="quality hold",
                            border_style="yellow"))
    for e in s.open_exceptions:
        console.print(Panel(f"{e.message}\ncode {e.erp_code or '-'} · {e.step_kind} · attempts {e.attempts}"
                            f"\nopened {e.opened_at.isoformat()}", title=f"exception {e.id}", border_style="red"))
    ops = Table("op", "work center", "planned", "yield", "scrap", "final", title="operations")
    for p in s.operations.values():
        ops.add_row(p.number, p.work_center, f"{p.planned} {p.uom}", str(p.yield_total), str(p.scrap_total),
                    "yes" if p.final else "")
    console.print(ops)
    tl = Table("at", "kind", "text", "by", title="recent timeline")
    for t in s.timeline[-10:]:
        tl.add_row(t.at.strftime("%Y-%m-%d %H:%M:%S"), t.kind, t.text, t.by or "")
    console.print(tl)


@orders_app.command("show")
def orders_show(plant: str, order: str, temporal: str = TEMPORAL) -> None:
    """One order: state, hold, open exceptions with the ERP's message, operations, timeline."""

    async def run() -> SagaState:
        return await order_summary(await _client(temporal), plant, order)

    _render(asyncio.run(run()))


@exceptions_app.command("list")
def exceptions_list(plant: str = typer.Option(None, "--plant"), temporal: str = TEMPORAL) -> None:
    """Open exceptions of the orders that have any."""

    async def run() -> list[tuple[str, SagaState]]:
        client = await _client(temporal)
        out = []
        for r in await _list(temporal, _query(plant, None, "OpenExceptions > 0")):
            out.append((r["id"], await order_summary(client, r["plant"], r["order"])))
        return out

    now = datetime.now(UTC)
    table = Table("plant", "order", "exception", "message", "code", "age")
    for _, s in asyncio.run(run()):
        for e in s.open_exceptions:
            table.add_row(s.order.plant, s.order.number, e.id, e.message, e.erp_code or "",
                          f"{int((now - e.opened_at).total_seconds())} s")
    console.print(table)


@exceptions_app.command("resolve")
def exceptions_resolve(
    plant: str, order: str, exception_id: str,
    action: str = typer.Option(..., "--action", help="retry | skip | override"),
    document: str = typer.Option(None, "--document", help="with override: the document posted by hand"),
    comment: str = typer.Option(None, "--comment"),
    by: str = typer.Option(..., "--by", help="who resolves (recorded in the audit trail)"),
    temporal: str = TEMPORAL, store_url: str = STORE,
) -> None:
    """Resolve an open exception (signal `resolve_exception`) and write the audit record."""
    if action not in ("retry", "skip", "override"):
        raise typer.BadParameter("use retry, skip or override", param_hint="--action")
    resolution = ExceptionResolution(exception_id=exception_id, action=action,
                                     by=by, comment=comment, document=document)

    async def run() -> None:
        client = await _client(temporal)
        s = await order_summary(client, plant, order)
        exc = next((e for e in s.exceptions if e.id == exception_id), None)
        if exc is None or exc.status != "open":
            console.print(f"[red]exception {exception_id} is {exc.status if exc else 'unknown'}[/]")
            raise typer.Exit(1)
        await resolve_exception(client, plant, order, resolution)
        db = await Database(_settings(store_url=store_url).store_url).init()
        try:
            await AuditTrail(db).record(workflow_id=workflow_id(plant, order), plant=plant, order=s.order.number,
                                        actor=by, action="cli.resolve_exception",
                                        detail={"exception_id": exception_id, "resolution": action,
                                                "comment": comment, "document": document, "via": "cli"})
        finally:
            await db.close()

    asyncio.run(run())
    console.print(f"{action} sent for {exception_id} of order {order} by {by}")


async def _keys(store_url: str | None) -> ApiKeys:
    return ApiKeys(await Database(_settings(store_url=store_url).store_url).init())


@keys_app.command("create")
def keys_create(name: str = typer.Option(..., "--name"), role: str = typer.Option(..., "--role", help="/".join(ROLES)),
                plants: str = typer.Option(..., "--plants", help="comma-separated plants, or *"),
                kind: str = typer.Option(None, "--kind", help="source kind of a plant-system (mes/qms/wms, "
                                         "default mes) or edge (edge) key: which event types it may send"),
                sources: str = typer.Option(None, "--sources", help="comma-separated `source` prefixes the key "
                                            "may speak for (default: its kind)"),
                expires_in_days: float = typer.Option(None, "--expires-in-days", help="refused after this many days"),
                store_url: str = STORE) -> None:
    """Create a key; it is printed once and stored only as a hash."""
    expires_at = datetime.now(UTC) + timedelta(days=expires_in_days) if expires_in_days else None
    if kind is None and role in ROLE_KINDS:
        kind = ROLE_KINDS[role][0]

    async def run() -> str:
        keys = await _keys(store_url)
        try:
            _, key = await keys.create(name, role, plants.split(","), kind=kind,
                                       sources=sources.split(",") if sources else None, expires_at=expires_at,
                                       actor=_cli_actor())
            return key
        finally:
            await keys.db.close()

    try:
        key = asyncio.run(run())
    except ApiKeyError as err:
        console.print(f"[red]{err}[/]")
        raise typer.Exit(2) from None
    typer.echo(key)


@keys_app.command("list")
def keys_list(store_url: str = STORE) -> None:
    async def run() -> list[Any]:
        keys = await _keys(store_url)
        try:
            return await keys.all_keys()
        finally:
            await keys.db.close()

    def at(when: datetime | None) -> str:
        return when.isoformat(timespec="seconds") if when else ""

    table = Table("key id", "name", "role", "kind", "plants", "created", "expires", "last used", "revoked")
    for k in asyncio.run(run()):
        kind = k.kind or (f"({k.source_kind})" if k.source_kind else "")  # (mes): a key from before kinds
        table.add_row(k.key_id, k.name, k.role, kind, ",".join(k.plants), at(k.created_at), at(k.expires_at),
                      at(k.last_used_at), at(k.revoked_at))
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(name_or_id: str, store_url: str = STORE) -> None:
    async def run() -> bool:
        keys = await _keys(store_url)
        try:
            return await keys.revoke(name_or_id, actor=_cli_actor())
        finally:
            await keys.db.close()

    if not asyncio.run(run()):
        console.print(f"[red]no active key {name_or_id!r}[/]")
        raise typer.Exit(1)
    console.print(f"revoked {name_or_id}")


async def replay_messages(settings: GatewaySettings, *, status: str = "dead",
                          msg_id: int | None = None) -> list[tuple[int, Any]]:
    """Re-drive inbox messages with the gateway's own dependencies (plant policies, cross-references,
    ERP order sources: `gateway_deps_from_plants`), so a replayed message is handled as on arrival."""
    from plantbridge.gateway.inbox import Intake
    from plantbridge.gateway.server import gateway_deps_from_plants

    db = await Database(settings.store_url).init()
    try:
        client = await connect(settings.temporal_address, settings.namespace)
        intake = Intake(gateway_deps_from_plants(settings, client, db))
        results = await intake.replay(status=status, msg_id=msg_id)
        audit, actor = AuditTrail(db), _cli_actor()
        for mid, out in results:  # who re-drove which message, with what outcome
            await audit.record(workflow_id=f"inbox:{mid}", plant="", order="", actor=actor,
                               action="inbox_replayed", detail={"inbox_id": mid, "from_status": status,
                                                                "http_status": out.http_status})
        return results
    finally:
        await db.close()


@keys_app.command("rotate")
def keys_rotate(name_or_id: str,
                grace_hours: float = typer.Option(24.0, "--grace-hours", help="how long the old secret still works"),
                expires_in_days: float = typer.Option(None, "--expires-in-days", help="new expiry of the key"),
                store_url: str = STORE) -> None:
    """A new secret for the key (same id, name and rights), printed once; the old one works for the grace period."""
    expires_at = datetime.now(UTC) + timedelta(days=expires_in_days) if expires_in_days else None

    async def run() -> str | None:
        keys = await _keys(store_url)
        try:
            rotated = await keys.rotate(name_or_id, grace=timedelta(hours=grace_hours), expires_at=expires_at,
                                        actor=_cli_actor())
            return rotated[1] if rotated else None
        finally:
            await keys.db.close()

    key = asyncio.run(run())
    if key is None:
        console.print(f"[red]no active key {name_or_id!r}[/]")
        raise typer.Exit(1)
    typer.echo(key)


def _cli_actor() -> str:
    """Who runs the CLI (the audit's actor of key changes and replays)."""
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def replay(status: str = typer.Option("dead", "--status", help="dead | waiting | deferred | received"),
           msg_id: int = typer.Option(None, "--id", help="one inbox message"),
           temporal: str = TEMPORAL, store_url: str = STORE,
           plants_dir: Path = typer.Option(None, "--plants-dir", help="folder of plant files (PLANTBRIDGE_PLANTS_DIR)"),
           task_queue: str = typer.Option(None, "--task-queue", help="the workers' task queue")) -> None:
    """Re-drive inbox messages (after the cause is fixed); an event processed before answers `duplicate`."""
    from plantbridge.gateway.settings import GatewaySettings

    if status not in ("dead", "waiting", "deferred", "received"):
        raise typer.BadParameter("use dead, waiting, deferred or received", param_hint="--status")
    settings = GatewaySettings.from_env(temporal_address=temporal, store_url=store_url, plants_dir=plants_dir,
                                        task_queue=task_queue)
    results = asyncio.run(replay_messages(settings, status=status, msg_id=msg_id))
    for mid, out in results:
        typer.echo(json.dumps({"id": mid, "http_status": out.http_status, "body": out.body}))
    console.print(f"re-drove {len(results)} message(s)")
