"""Builds each plant's connectors from its configuration (the per-plant choice of ERP and systems)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from plantbridge.canonical.plant_config import ErpConfig, PlantConfig
from plantbridge.connectors.ports import ErpConnector, MesConnector, Notifier, QmsConnector, WmsConnector
from plantbridge.connectors.reference import ReferenceStore, ReferenceSystems


class ConfigurationError(RuntimeError):
    """A plant's systems cannot be built from its configuration."""


def secret(env: str | None, what: str) -> str:
    if not env:
        raise ConfigurationError(f"{what}: no environment variable named for the secret")
    value = os.environ.get(env)
    if value is None:
        raise ConfigurationError(f"{what}: environment variable {env} is not set")
    return value


@dataclass
class Systems:
    erp: ErpConnector
    mes: MesConnector
    qms: QmsConnector
    wms: WmsConnector
    notify: Notifier


def build_erp(plant: str, cfg: ErpConfig, reference: ReferenceSystems) -> Any:
    if cfg.kind == "reference":
        return reference.erp
    if cfg.kind == "sap_odata":
        from plantbridge.connectors.sap_odata import SapODataConnector

        assert cfg.url is not None and cfg.user is not None
        ud: dict[str, tuple[str, str, str]] | None = {
            str(k): (v.code_group, v.code, str(v.valuation)) for k, v in cfg.usage_decisions.items()} or None
        return SapODataConnector(cfg.url, user=cfg.user, password=secret(cfg.password_env, f"plant {plant} erp"),
                                 client=cfg.client, timeout=cfg.timeout_s, plant=plant, ud_codes=ud,
                                 notification_type=cfg.notification_type,
                                 overdelivery_tolerance_pct=cfg.overdelivery_tolerance_pct)
    if cfg.kind == "sap_rfc":
        from plantbridge.connectors.sap_rfc import SapRfcConnector

        params = dict(cfg.rfc)
        if cfg.password_env:
            params["passwd"] = secret(cfg.password_env, f"plant {plant} erp rfc")
        try:
            return SapRfcConnector.from_params(plant=plant, **params)
        except RuntimeError as err:  # pyrfc / SAP's SDK missing on this machine
            raise ConfigurationError(f"plant {plant}: {err}") from err
    raise ConfigurationError(f"plant {plant}: erp kind {cfg.kind} has no connector in this release")


class ConfiguredRegistry:
    """Plants with a file get their configured systems; any other plant the reference systems."""

    def __init__(self, plants: dict[str, PlantConfig], reference: ReferenceStore) -> None:
        self.plants = plants
        self.reference = ReferenceSystems(reference)
        self._systems: dict[str, Systems] = {}
        for code, cfg in plants.items():
            self._systems[code] = self._build(code, cfg)

    def _build(self, plant: str, cfg: PlantConfig) -> Systems:
        ref = self.reference
        for name in ("mes", "qms", "wms"):
            if getattr(cfg, name).kind != "reference":
                raise ConfigurationError(f"plant {plant}: {name} kind {getattr(cfg, name).kind} has no connector yet")
        return Systems(erp=build_erp(plant, cfg.erp, ref), mes=ref.mes, qms=ref.qms, wms=ref.wms, notify=ref.notify)

    def for_plant(self, plant: str) -> Systems | ReferenceSystems:
        return self._systems.get(plant, self.reference)

    async def aclose(self) -> None:
        for systems in self._systems.values():
            close = getattr(systems.erp, "aclose", None)
            if close is not None:
                await close()
