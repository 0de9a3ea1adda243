"""`plantbridge dev`, `demo`, `bench` and `chaos`: the development commands of the CLI.

plantbridge's CLI calls `register(app)` for every entry point of the group ``plantbridge.cli``
(devtools/pyproject.toml declares this one), so these commands exist only where plantbridge-devtools
is installed.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import typer
from rich.console import Console

COMMANDS = ("dev", "demo", "bench", "chaos")
console = Console()


def dev(
    state_dir: Path = typer.Option(Path(".plantbridge"), help="where the SQLite files, logs and dev.json go"),
    ports_offset: int = typer.Option(0, help="add N to every default port (a second stack beside the first)"),
    free_ports: bool = typer.Option(False, "--free-ports", help="pick unused ports instead of the defaults"),
    port: int = typer.Option(None, help="Temporal frontend port (default 7233)"),
    ui_port: int = typer.Option(None, help="Temporal UI port (default 8233)"),
    gateway_port: int = typer.Option(None, help="gateway port (default 8080)"),
    sap_port: int = typer.Option(None, help="SAP S/4HANA simulator port (default 8101)"),
    mes_port: int = typer.Option(None, help="MES simulator port (default 8102)"),
    qms_port: int = typer.Option(None, help="QMS simulator port (default 8103)"),
    wms_port: int = typer.Option(None, help="WMS simulator port (default 8104)"),
    opcua_port: int = typer.Option(None, help="machine simulator OPC UA port (default 4840)"),
    odoo_port: int = typer.Option(None, help="Odoo simulator port (plant 3000; default 8106)"),
) -> None:
    """The local stack: Temporal dev server, simulators, worker, gateway, edge agent; writes dev.json."""
    from plantbridge_devtools.dev import run_dev
    from plantbridge_devtools.stack import Ports

    base = Ports.free() if free_ports else Ports().offset(ports_offset)
    ports = base.override(temporal=port, ui=ui_port, gateway=gateway_port, sap=sap_port, mes=mes_port,
                          qms=qms_port, wms=wms_port, opcua=opcua_port, odoo=odoo_port)
    raise typer.Exit(asyncio.run(run_dev(state_dir, ports=ports, console=console)))


def demo(
    orders: int = typer.Option(6, min=4, max=200, help="how many orders the simulated plant runs"),
    state_dir: Path = typer.Option(Path(".plantbridge"), help="where a running `plantbridge dev` keeps dev.json"),
) -> None:
    """Run a simulated plant through the stack (a running `plantbridge dev`, else its own), with a summary."""
    from plantbridge_devtools.demo import run_demo

    ok = asyncio.run(run_demo(orders, console, state_dir=state_dir))
    raise typer.Exit(0 if ok else 1)


def bench(
    quick: bool = typer.Option(False, "--quick", help="a run under a minute (small sizes)"),
    out: Path = typer.Option(None, "--out", help="write the JSON result here"),
    no_edge: bool = typer.Option(False, "--no-edge", help="skip the edge agent part"),
) -> None:
    """Benchmark: plantbridge through the gateway against the bare engine on the same server."""
    from plantbridge_devtools.bench import run_bench

    logging.basicConfig(level=logging.WARNING)
    asyncio.run(run_bench(quick=quick, out=out, console=console, skip_edge=no_edge))


def chaos(
    minutes: float = typer.Option(2.0, min=0.1, max=120, help="how long the storm lasts (demo rounds run meanwhile)"),
    quick: bool = typer.Option(False, "--quick", help="half a minute, the smallest demo rounds (the test suite's run)"),
    orders: int = typer.Option(4, min=4, max=50, help="SAP orders per demo round (Odoo: half as many, at least 4)"),
    seed: int = typer.Option(16, help="seed of the SAP and Odoo fault sequences"),
    out: Path = typer.Option(None, "--out", help="write the figures as JSON here"),
    state_dir: Path = typer.Option(None, help="keep the stack's state and logs here (default: a temporary folder)"),
) -> None:
    """The demo on a dev stack of its own while Temporal, a worker and the gateway are SIGKILLed, the OPC UA
    server restarted, the edge cut off and SAP/Odoo fail one call in five; exit 1 unless nothing was lost,
    doubled or unkeyed and every order ended."""
    from plantbridge_devtools.chaos import Storm, run_chaos

    logging.basicConfig(level=logging.WARNING)
    storm = Storm(seed=seed, edge_away_s=6.0 if quick else 12.0)
    figures = asyncio.run(run_chaos(0.5 if quick else minutes, orders=orders, console=console, storm=storm,
                                    state_dir=state_dir, out=out))
    raise typer.Exit(0 if figures.ok else 1)


def register(app: typer.Typer) -> None:
    """Add `dev`, `demo`, `bench` and `chaos` to the `plantbridge` command."""
    app.command("dev")(dev)
    app.command("demo")(demo)
    app.command("bench")(bench)
    app.command("chaos")(chaos)
