"""The `plantbridge` command."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import entry_points
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
def status(
    plant: str = typer.Option(None, help="only this plant"),
    temporal: str = typer.Option(None, help="Temporal frontend host:port (PLANTBRIDGE_TEMPORAL_ADDRESS)"),
    store_url: str = typer.Option(None, help="SQLAlchemy URL of the store (PLANTBRIDGE_STORE_URL)"),
) -> None:
    """Per plant: orders by state, holds, open exceptions and their age, rejected and delayed postings."""
    from plantbridge.workers.status import print_status

    settings = Settings.from_env(temporal_address=temporal, store_url=store_url)
    if not asyncio.run(print_status(settings, plant, console)):
        raise typer.Exit(1)  # Temporal or the store did not answer (named above the table)


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
    from plantbridge.workers.registry import erp_order_source, odoo_intake

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with config_errors():
        settings = Settings.from_env(plants_dir=plants_dir)
        plants = load_plants(settings.plants_dir) if settings.plants_dir else {}
        sources, tokens = odoo_intake(plants)
        serve(host, port, temporal=temporal, store_url=store_url, plants=plants,
              order_source=erp_order_source(plants), order_sources=sources, odoo_tokens=tokens)


edge_app = typer.Typer(help="the OPC UA edge agent of one plant; `edge pki init` makes its certificate")
edge_pki_app = typer.Typer(no_args_is_help=True, help="the edge agent's OPC UA certificate and trust list")
edge_app.add_typer(edge_pki_app, name="pki")
app.add_typer(edge_app, name="edge")


@contextmanager
def edge_config_errors() -> Iterator[None]:
    from plantbridge.edge.config import ConfigError

    try:
        yield
    except ConfigError as err:
        err_console.print(f"[bold red]configuration error[/]\n{err}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


@edge_app.callback(invoke_without_command=True)
def edge(ctx: typer.Context,
         config: Path = typer.Option(None, "--config", help="the edge agent's YAML file (one per plant)")) -> None:
    """The OPC UA edge agent: machines to plant events, telemetry rollups, store-and-forward."""
    if ctx.invoked_subcommand is not None:
        return
    if config is None:
        raise typer.BadParameter("--config FILE is required", param_hint="--config")
    from plantbridge.edge.cli import run_edge

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with edge_config_errors():
        asyncio.run(run_edge(config))


@edge_pki_app.command("init")
def edge_pki_init(
    config: Path = typer.Option(..., "--config", help="the edge agent's YAML file (opcua: application_uri, pki_dir)"),
    hostname: list[str] = typer.Option(None, "--hostname", help="DNS name(s) in the certificate (default: this host)"),
    force: bool = typer.Option(False, "--force", help="a new key and certificate even if the present one is usable"),
) -> None:
    """Create the PKI folders (own/, trusted/, rejected/) and the agent's self-signed certificate."""
    from plantbridge.edge.cli import init_pki

    with edge_config_errors():
        console.print(init_pki(config, hostnames=hostname or None, force=force), highlight=False, soft_wrap=True)


def _mount_edge_outbox_commands() -> None:
    from plantbridge.workers.edge_outbox_cli import outbox_app

    app.add_typer(outbox_app, name="edge-outbox", help="an edge agent's outbox: list | requeue its dead events")


_mount_edge_outbox_commands()


def _mount_supervisor_commands() -> None:
    from plantbridge.workers.supervisor_cli import exceptions_app, keys_app, orders_app, replay

    app.add_typer(orders_app, name="orders", help="orders by plant and state; one order in detail")
    app.add_typer(exceptions_app, name="exceptions", help="open exceptions; resolve one")
    app.add_typer(keys_app, name="keys", help="API keys of the gateway")
    app.command("replay", help="re-drive dead or waiting inbox messages")(replay)
    from plantbridge.workers.batch_cli import batch_app

    app.add_typer(batch_app, name="batch", help="scheduled batch jobs: list | run | backfill | pause | unpause")
    from plantbridge.workers.export_cli import export_app

    app.add_typer(export_app, name="export", help="export documents: B2MML of one order")
    from plantbridge.workers.store_cli import store_app

    app.add_typer(store_app, name="store", help="the store's schema: upgrade | current")

    from plantbridge.workers.plant_cli import plant_app

    app.add_typer(plant_app, name="plant", help="onboarding a site: plant new PLANT --from TEMPLATE | plant check")


_mount_supervisor_commands()


def _mount_security_commands() -> None:
    from plantbridge.security.cli import codec_key, codec_server

    app.command("codec-server")(codec_server)
    app.command("codec-key")(codec_key)


_mount_security_commands()


# The development commands ARCHITECTURE names; the distribution plantbridge-devtools provides them.
DEV_COMMANDS = ("dev", "demo", "bench", "chaos")
PLUGIN_GROUP = "plantbridge.cli"
DEVTOOLS_HINT = ("`plantbridge {name}` is a development tool from the distribution plantbridge-devtools, which is "
                 "not installed here. From a checkout of plantbridge: `make install`, or "
                 "`pip install -e ./devtools`.")


def _command_names() -> set[str]:
    return {info.name or (info.callback.__name__ if info.callback else "") for info in app.registered_commands}


def _missing_command(name: str) -> None:
    """A stand-in for a development command whose distribution is not installed: say how to get it."""

    @app.command(name, help=f"(not installed) {DEVTOOLS_HINT.format(name=name)}", add_help_option=False,
                 context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def _stand_in(ctx: typer.Context) -> None:
        err_console.print(DEVTOOLS_HINT.format(name=name), highlight=False, soft_wrap=True)
        raise typer.Exit(2)


def _mount_plugins() -> None:
    """Commands from other installed distributions: each entry point of the group `plantbridge.cli` is a
    callable `register(app)`. A plugin that fails to load is reported, not fatal to production commands."""
    for entry in entry_points(group=PLUGIN_GROUP):
        try:
            entry.load()(app)
        except Exception as err:  # a broken dev install must not take `plantbridge worker` down with it
            err_console.print(f"[yellow]plantbridge: the CLI plugin {entry.value} did not load: {err!r}[/]",
                              highlight=False, soft_wrap=True)
    present = _command_names()
    for name in DEV_COMMANDS:
        if name not in present:
            _missing_command(name)


_mount_plugins()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
