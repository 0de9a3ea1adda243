"""Loading the plant files (`plants/*.yaml`, `*.yml` or `*.toml`, one per plant) with clear errors."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from plantbridge.canonical.plant_config import PlantConfig


class PlantConfigError(ValueError):
    """A plant file is invalid; the message names the file, the field and the value."""


def _read(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".toml":
            return tomllib.loads(text)
        return yaml.safe_load(text)
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as err:
        raise PlantConfigError(f"{path}: not valid {path.suffix.lstrip('.').upper()}: {err}") from None


def load_plant(path: Path) -> PlantConfig:
    data = _read(path)
    if not isinstance(data, dict):
        raise PlantConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    try:
        cfg = PlantConfig.model_validate(data)
    except ValidationError as err:
        lines = []
        for e in err.errors():
            loc = ".".join(str(p) for p in e["loc"]) or "(file)"
            value = e.get("input")
            shown = "" if isinstance(value, dict) else f" (value: {value!r})"
            lines.append(f"{path}: {loc}: {e['msg']}{shown}")
        raise PlantConfigError("\n".join(lines)) from None
    if "kind" not in cfg.erp.model_fields_set:
        # No silent fall-back onto the reference systems: a plant on them says so.
        raise PlantConfigError(f"{path}: erp.kind: required: sap_odata, sap_rfc, odoo or reference "
                               "(`erp: {kind: reference}` for the reference systems)")
    return cfg


def load_plants(directory: Path) -> dict[str, PlantConfig]:
    """Every plant file in `directory` (not `edge-*`), by plant code; two files for one plant is an error."""
    plants: dict[str, PlantConfig] = {}
    # `edge-*` files beside the plant files configure edge agents (`plantbridge edge --config`).
    files = sorted(p for p in directory.iterdir()
                   if p.is_file() and p.suffix in (".yaml", ".yml", ".toml") and not p.name.startswith("edge-"))
    for path in files:
        cfg = load_plant(path)
        if cfg.plant in plants:
            raise PlantConfigError(f"{path}: plant {cfg.plant} is configured twice")
        plants[cfg.plant] = cfg
    return plants
