"""`plantbridge export b2mml ORDER --plant P`: one order in B2MML V0600, for MES and analytics.

Writes what was released (ProductionSchedule) and what was reported (ProductionPerformance), read
from the saga's `summary` query (a worker must be polling) and validated against MESA's XSDs, to
the plant's export target: the plant file's `exports` (with `--plants-dir`), else `--out`, else
`<state dir>/exports/<plant>/`. Files are named by their content hash: exporting again is a no-op.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import typer
from rich.console import Console
from temporalio.service import RPCError, RPCStatusCode

from plantbridge.batch.export import Document, export
from plantbridge.canonical.batch_config import DirectoryExport, ExportTarget
from plantbridge.client import connect, order_summary
from plantbridge.workers.plants import load_plants
from plantbridge.workers.settings import Settings, state_dir

export_app = typer.Typer(no_args_is_help=True, help="export documents: B2MML of one order")
console = Console()


def _target(plant: str, out: Path | None, plants_dir: Path | None) -> ExportTarget:
    if out is not None:
        return DirectoryExport(path=str(out))
    if plants_dir is not None:
        cfg = load_plants(plants_dir).get(plant)
        if cfg is not None and cfg.exports is not None:
            return cfg.exports
    return DirectoryExport(path=str(state_dir() / "exports" / plant))


@export_app.command()
def b2mml(
    order: str = typer.Argument(..., help="order number"),
    plant: str = typer.Option(..., "--plant"),
    out: Path = typer.Option(None, "--out", help="write to this folder instead of the plant's export target"),
    plants_dir: Path = typer.Option(None, "--plants-dir", help="plant files (PLANTBRIDGE_PLANTS_DIR)"),
    temporal: str = typer.Option(None, "--temporal", help="Temporal frontend host:port (PLANTBRIDGE_TEMPORAL_ADDRESS)"),
) -> None:
    """Write the order's ProductionSchedule (released) and ProductionPerformance (reported), validated."""
    from plantbridge.batch.b2mml.order import order_documents

    settings = Settings.from_env(temporal_address=temporal, plants_dir=plants_dir)

    async def go() -> list[tuple[str, bool]]:
        client = await connect(settings.temporal_address, settings.namespace)
        try:
            state = await order_summary(client, plant, order)
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            console.print(f"[red]no saga for order {order} of plant {plant}[/red]")
            raise typer.Exit(1) from None
        docs = [Document(name, body, "application/xml", hashlib.sha256(body).hexdigest())
                for name, body in order_documents(state)]
        written = await export(_target(plant, out, settings.plants_dir), docs)
        return [(w.location, w.new) for w in written]

    for location, new in asyncio.run(go()):
        console.print(f"{'new ' if new else 'same'} {location}")
