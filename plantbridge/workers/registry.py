"""Builds each plant's connectors from its configuration (the per-plant choice of ERP and systems)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from plantbridge.canonical.plant_config import ErpConfig, PlantConfig
from plantbridge.connectors.ports import ErpConnector, MesConnector, Notifier, OrderSource, QmsConnector, WmsConnector
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
    if cfg.kind == "odoo":
        return odoo_connector(plant, cfg)
    raise ConfigurationError(f"plant {plant}: erp kind {cfg.kind} has no connector in this release")


def odoo_connector(plant: str, cfg: ErpConfig, units: dict[str, str] | None = None) -> Any:
    from plantbridge.connectors.odoo import OdooConnector
    from plantbridge.connectors.odoo_rpc import OdooRpc

    assert cfg.url is not None and cfg.database is not None and cfg.login is not None
    api = cfg.api or ("json2" if cfg.version == "19.0" else "jsonrpc")
    rpc = OdooRpc(cfg.url, database=cfg.database, login=cfg.login, timeout=cfg.timeout_s, api=api,
                  api_key=secret(cfg.api_key_env, f"plant {plant} erp"))
    return OdooConnector(rpc, plant=plant, units=units, backorder=cfg.backorder, losses=cfg.losses)


class ConfiguredRegistry:
    """Plants with a file get their configured systems; any other plant the reference systems."""

    def __init__(self, plants: dict[str, PlantConfig], reference: ReferenceStore) -> None:
        self.plants = plants
        self.reference = ReferenceSystems(reference)
        self._systems: dict[str, Systems] = {}
        for code, cfg in plants.items():
            try:
                self._systems[code] = self._build(code, cfg)
            except ValueError as err:
                raise ConfigurationError(f"plant {code}: {err}") from err

    def _build(self, plant: str, cfg: PlantConfig) -> Systems:
        ref = self.reference
        mes: Any = ref.mes
        qms: Any = ref.qms
        wms: Any = ref.wms
        if cfg.mes.kind == "rest":
            from plantbridge.connectors.mes_rest import MesRestConnector

            mes = MesRestConnector.from_plant(cfg)
        if cfg.qms.kind == "rest":
            from plantbridge.connectors.qms_rest import QmsRestConnector

            qms = QmsRestConnector.from_plant(cfg)
        if cfg.wms.kind == "rest":
            from plantbridge.connectors.wms_rest import WmsRestConnector

            wms = WmsRestConnector.from_plant(cfg)
        odoo = cfg.erp.kind == "odoo"
        erp = odoo_connector(plant, cfg.erp, cfg.xref.units) if odoo else build_erp(plant, cfg.erp, ref)
        return Systems(erp=erp, mes=mes, qms=qms, wms=wms, notify=ref.notify)

    def for_plant(self, plant: str) -> Systems | ReferenceSystems:
        return self._systems.get(plant, self.reference)

    async def aclose(self) -> None:
        for systems in self._systems.values():
            for conn in (systems.erp, systems.mes, systems.qms, systems.wms):
                close = getattr(conn, "aclose", None)
                if close is not None:
                    await close()


def odoo_intake(plants: dict[str, PlantConfig]) -> tuple[dict[str, OrderSource], dict[str, str]]:
    """Per Odoo plant: its order source (the connector) and webhook token (plants without a token get none)."""
    sources: dict[str, OrderSource] = {}
    tokens: dict[str, str] = {}
    for code, cfg in sorted(plants.items()):
        if cfg.erp.kind == "odoo" and cfg.erp.webhook_token_env:
            sources[code] = odoo_connector(code, cfg.erp, cfg.xref.units)
            tokens[code] = secret(cfg.erp.webhook_token_env, f"plant {code} Odoo webhook token")
    return sources, tokens


def erp_order_source(plants: dict[str, PlantConfig]) -> OrderSource | None:
    """The S/4HANA system the business events come from: the (first) plant whose ERP is SAP OData.

    S/4HANA's business events name the order but not the plant; one gateway serves one SAP system.
    """
    for code in sorted(plants):
        erp = plants[code].erp
        if erp.kind == "sap_odata" and erp.url and erp.user:
            from plantbridge.connectors.sap_odata import SapODataConnector

            return SapODataConnector(erp.url, user=erp.user, password=secret(erp.password_env, f"plant {code} erp"),
                                     client=erp.client, timeout=erp.timeout_s,
                                     overdelivery_tolerance_pct=erp.overdelivery_tolerance_pct)
    return None


