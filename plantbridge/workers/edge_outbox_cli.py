"""``plantbridge edge-outbox``: what an edge agent's outbox holds; list and re-queue its dead events.

Works on the outbox file named by the edge file (``outbox_path``), with the agent running or not
(SQLite WAL: the running agent's forwarder picks a re-queued event up within a second).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from plantbridge.edge.outbox import Outbox

outbox_app = typer.Typer(no_args_is_help=True)
console = Console()
CONFIG = typer.Option(..., "--config", help="the edge agent's YAML file (its outbox_path is read)")


def _outbox(config: Path) -> Outbox:
    # imported here: `plantbridge.edge` loads asyncua, a second at every start of the `plantbridge` command
    from plantbridge.edge.config import ConfigError, load_config
    from plantbridge.edge.outbox import Outbox, open_db

    try:
        cfg = load_config(config)
    except ConfigError as err:
        console.print(f"[bold red]configuration error[/]\n{err}", highlight=False)
        raise typer.Exit(2) from None
    if not cfg.outbox_path.exists():
        console.print(f"no outbox at {cfg.outbox_path} (the agent has not run yet)")
        raise typer.Exit(1)
    return Outbox(open_db(cfg.outbox_path))


@outbox_app.command("list")
def list_dead(config: Path = CONFIG, as_json: bool = typer.Option(False, "--json", help="JSON lines")) -> None:
    """Events per state, and the dead events (refused `gateway.max_refusals` times) with the last refusal."""
    outbox = _outbox(config)
    try:
        counts, dead = outbox.counts(), outbox.dead()
    finally:
        outbox.db.close()
    if as_json:
        print(json.dumps({"counts": counts}))
        for row in dead:
            print(json.dumps(row))
        return
    console.print("outbox: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "empty"))
    if not dead:
        console.print("no dead events")
        return
    table = Table("event_id", "machine", "type", "refusals", "dead since (UTC)", "last answer")
    for row in dead:
        since = datetime.fromtimestamp(row["dead_at"], UTC).strftime("%Y-%m-%d %H:%M:%S") if row["dead_at"] else "-"
        table.add_row(row["event_id"], row["machine_id"], row["event_type"], str(row["refusals"]), since,
                      str(row["answer"] or "")[:160])
    console.print(table)


@outbox_app.command("requeue")
def requeue(
    event_ids: list[str] = typer.Argument(None, help="dead event ids to send again"),
    all_dead: bool = typer.Option(False, "--all", help="every dead event"),
    config: Path = CONFIG,
) -> None:
    """Dead events back to pending (their refusal count reset): the agent sends them again, in order."""
    if not event_ids and not all_dead:
        console.print("name the event ids to re-queue, or --all")
        raise typer.Exit(2)
    outbox = _outbox(config)
    try:
        n = outbox.requeue(None if all_dead else event_ids)
    finally:
        outbox.db.close()
    console.print(f"re-queued {n} dead event(s)")
    if event_ids and n < len(event_ids):
        raise typer.Exit(1)
