"""`plantbridge plant new PLANT --from TEMPLATE` and `plantbridge plant check PLANT`: onboarding a site.

`new` writes `<plants dir>/<PLANT>.yaml` from a shipped template (sap_odata, sap_rfc, odoo,
reference); `check` validates a plant file against the live systems and prints each check with
OK / WARN / FAIL, exiting 1 when one failed (2 when the file or template cannot be found).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer
from rich.console import Console

from plantbridge.onboarding.plant_check import (
    TEMPLATES,
    TemplateError,
    check_plant_file,
    failed,
    find_plant_file,
    new_plant_file,
)
from plantbridge.workers.plants import PlantConfigError
from plantbridge.workers.settings import Settings

plant_app = typer.Typer(no_args_is_help=True, help="onboarding a site: a plant file from a template; check it")
console = Console()
STYLE = {"OK": "green", "WARN": "yellow", "FAIL": "bold red", "SKIP": "yellow"}


def _plants_dir(plants_dir: Path | None) -> Path:
    return Settings.from_env(plants_dir=plants_dir).plants_dir or Path("plants")


@plant_app.command("new")
def new(
    plant: str = typer.Argument(..., help="the plant code (1 to 4 letters or digits)"),
    template: str = typer.Option(..., "--from", help=f"the template: {', '.join(TEMPLATES)}"),
    name: str = typer.Option(None, "--name", help="the plant's name"),
    plants_dir: Path = typer.Option(None, "--plants-dir", help="folder of plant files (PLANTBRIDGE_PLANTS_DIR)"),
    force: bool = typer.Option(False, "--force", help="overwrite an existing plant file"),
) -> None:
    """Write a plant file from a template; fill in its CHANGE-ME values, then `plantbridge plant check`."""
    try:
        path = new_plant_file(plant, template, _plants_dir(plants_dir), name=name, overwrite=force)
    except (TemplateError, PlantConfigError) as err:
        console.print(f"[bold red]{err}[/]", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    console.print(f"wrote {path} (template {template}); fill in its CHANGE-ME values, set the environment "
                  f"variables it names, then: plantbridge plant check {plant}", highlight=False, soft_wrap=True)


@plant_app.command("check")
def check(
    plant: str = typer.Argument(..., help="the plant code"),
    plants_dir: Path = typer.Option(None, "--plants-dir", help="folder of plant files (PLANTBRIDGE_PLANTS_DIR)"),
    file: Path = typer.Option(None, "--file", help="the plant file (default: <plants dir>/<PLANT>.yaml)"),
) -> None:
    """Validate a plant file against the live systems: file, secrets, ERP, MES/QMS/WMS, cross-references."""
    try:
        path = file or find_plant_file(plant, _plants_dir(plants_dir))
    except TemplateError as err:
        console.print(f"[bold red]{err}[/]", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    checks = asyncio.run(check_plant_file(path, plant=plant))
    for c in checks:
        console.print(f"[{STYLE[c.outcome]}]{c.outcome:<4}[/] {c.name:<16} {c.detail}", highlight=False,
                      soft_wrap=True)
    bad = failed(checks)
    console.print(f"plant {plant}: " + ("[bold red]NOT READY[/]" if bad else "[green]ready[/]"), highlight=False)
    if bad:
        raise typer.Exit(1)
