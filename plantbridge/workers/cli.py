"""The `plantbridge` command."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console

from plantbridge.workers.settings import Settings

err_console = Console(stderr=True)


@contextmanager
def config_errors() -> Iterator[None]:
    """Configuration problems end the process with the message alone, not a traceback."""
    from plantbridge.workers.plants import PlantConfigError
    from plantbridge.workers.registry import ConfigurationError

    try:
        yield
    except (PlantConfigError, ConfigurationError) as err:
        err_console.print(f"[bold red]configuration error[/]\n{err}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


app = typer.Typer(no_args_is_help=True, help="plantbridge: production orders as Temporal sagas, ERP <-> plant floor.")
console = Console()


@app.command()
def worker(
    temporal: str = typer.Option(None, help="Temporal frontend host:port (PLANTBRIDGE_TEMPORAL_ADDRESS)"),
    task_queue: str = typer.Option(None, help="task queue (PLANTBRIDGE_TASK_QUEUE)"),
    store_url: str = typer.Option(None, help="SQLAlchemy URL of the store (PLANTBRIDGE_STORE_URL)"),
    reference_url: str = typer.Option(None, help="SQLAlchemy URL of the reference systems (PLANTBRIDGE_REFERENCE_URL)"),
    plants_dir: Path = typer.Option(None, help="folder of plant files, one per plant (PLANTBRIDGE_PLANTS_DIR)"),
) -> None:
    """Run the order saga's worker."""
    from plantbridge.workers.worker import run_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings.from_env(temporal_address=temporal, task_queue=task_queue, store_url=store_url,
                                 reference_url=reference_url, plants_dir=plants_dir)
    with config_errors():
        asyncio.run(run_worker(settings))


@app.command()
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
) -> None:
    """The local stack: Temporal dev server, simulators, worker, gateway, edge agent; writes dev.json."""
    from plantbridge.workers.dev import run_dev
    from plantbridge.workers.stack import Ports

    base = Ports.free() if free_ports else Ports().offset(ports_offset)
    ports = base.override(temporal=port, ui=ui_port, gateway=gateway_port, sap=sap_port, mes=mes_port,
                          qms=qms_port, wms=wms_port, opcua=opcua_port)
    raise typer.Exit(asyncio.run(run_dev(state_dir, ports=ports, console=console)))


@app.command()
def demo(
    orders: int = typer.Option(6, min=4, max=200, help="how many orders the simulated plant runs"),
    state_dir: Path = typer.Option(Path(".plantbridge"), help="where a running `plantbridge dev` keeps dev.json"),
) -> None:
    """Run a simulated plant through the stack (a running `plantbridge dev`, else its own), with a summary."""
    from plantbridge.workers.demo import run_demo

    ok = asyncio.run(run_demo(orders, console, state_dir=state_dir))
    raise typer.Exit(0 if ok else 1)


@app.command()
def status(
    plant: str = typer.Option(None, help="only this plant"),
    temporal: str = typer.Option(None, help="Temporal frontend host:port (PLANTBRIDGE_TEMPORAL_ADDRESS)"),
    store_url: str = typer.Option(None, help="SQLAlchemy URL of the store (PLANTBRIDGE_STORE_URL)"),
) -> None:
    """Per plant: orders by state, holds, open exceptions and their age, rejected and delayed postings."""
    from plantbridge.workers.status import print_status

    settings = Settings.from_env(temporal_address=temporal, store_url=store_url)
    asyncio.run(print_status(settings, plant, console))


@app.command()
def gateway(
    host: str = typer.Option(None, help="bind address (PLANTBRIDGE_GATEWAY_HOST, default 127.0.0.1)"),
    port: int = typer.Option(None, help="port (PLANTBRIDGE_GATEWAY_PORT, default 8080)"),
    temporal: str = typer.Option(None, help="Temporal frontend host:port (PLANTBRIDGE_TEMPORAL_ADDRESS)"),
    store_url: str = typer.Option(None, help="SQLAlchemy URL of the store (PLANTBRIDGE_STORE_URL)"),
    plants_dir: Path = typer.Option(None, help="folder of plant files (PLANTBRIDGE_PLANTS_DIR)"),
) -> None:
    """The HTTP gateway: ERP intake, plant events, supervisor API (OpenAPI at /docs)."""
    from plantbridge.gateway.server import serve
    from plantbridge.workers.plants import load_plants
    from plantbridge.workers.registry import erp_order_source

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with config_errors():
        settings = Settings.from_env(plants_dir=plants_dir)
        plants = load_plants(settings.plants_dir) if settings.plants_dir else {}
        serve(host, port, temporal=temporal, store_url=store_url, plants=plants,
              order_source=erp_order_source(plants))


@app.command()
def edge(config: Path = typer.Option(..., "--config", help="the edge agent's YAML file (one per plant)")) -> None:
    """The OPC UA edge agent: machines to plant events, telemetry rollups, store-and-forward."""
    from plantbridge.edge.cli import run_edge

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(run_edge(config))


@app.command()
def bench(
    quick: bool = typer.Option(False, "--quick", help="a run under a minute (small sizes)"),
    out: Path = typer.Option(None, "--out", help="write the JSON result here"),
    no_edge: bool = typer.Option(False, "--no-edge", help="skip the edge agent part"),
) -> None:
    """Benchmark: plantbridge through the gateway against the bare engine on the same server."""
    from plantbridge.workers.bench import run_bench

    logging.basicConfig(level=logging.WARNING)
    asyncio.run(run_bench(quick=quick, out=out, console=console, skip_edge=no_edge))


def _mount_supervisor_commands() -> None:
    from plantbridge.workers.supervisor_cli import exceptions_app, keys_app, orders_app, replay

    app.add_typer(orders_app, name="orders", help="orders by plant and state; one order in detail")
    app.add_typer(exceptions_app, name="exceptions", help="open exceptions; resolve one")
    app.add_typer(keys_app, name="keys", help="API keys of the gateway")
    app.command("replay", help="re-drive dead or waiting inbox messages")(replay)


_mount_supervisor_commands()


def _mount_security_commands() -> None:
    from plantbridge.security.cli import codec_key, codec_server

    app.command("codec-server")(codec_server)
    app.command("codec-key")(codec_key)


_mount_security_commands()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
