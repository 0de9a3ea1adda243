"""Builds each plant's connectors from its configuration (the per-plant choice of ERP and systems).

Only plants with a plant file have systems: a worker without plant files refuses to start, and a
step for a plant without a file fails (and, retried a few times, opens a supervisor exception)
instead of silently posting to the reference systems. A plant on the reference systems says
`erp: {kind: reference}` in its file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol

from plantbridge.canonical.plant_config import ErpConfig, PlantConfig
from plantbridge.connectors.odoo import OdooConnector
from plantbridge.connectors.odoo_rpc import OdooRpc
from plantbridge.connectors.ports import (
    ErpConnector,
    ErpPort,
    MesConnector,
    MesPort,
    NotifyPort,
    OrderSource,
    PlantSystems,
    QmsConnector,
    QmsPort,
    WmsConnector,
    WmsPort,
)


class ConfigurationError(RuntimeError):
    """A plant's systems cannot be built from its configuration."""


def secret(env: str | None, what: str) -> str:
    if not env:
        raise ConfigurationError(f"{what}: no environment variable named for the secret")
    value = os.environ.get(env)
    if value is None:
        raise ConfigurationError(f"{what}: environment variable {env} is not set")
    return value


class ReferenceSource(Protocol):
    """A store of reference systems: the SQLite one (dev stack) or the in-memory one (tests)."""

    def systems(self) -> PlantSystems: ...


@dataclass
class Systems:
    erp: ErpPort
    mes: MesPort
    qms: QmsPort
    wms: WmsPort
    notify: NotifyPort


def build_erp(plant: str, cfg: ErpConfig, reference: PlantSystems) -> ErpPort:
    if cfg.kind == "reference":
        return reference.erp
    if cfg.kind == "sap_odata":
        from plantbridge.connectors.sap_odata import SapODataConnector

        assert cfg.url is not None
        ud: dict[str, tuple[str, str, str]] | None = {
            str(k): (v.code_group, v.code, str(v.valuation)) for k, v in cfg.usage_decisions.items()} or None
        auth = None
        if cfg.oauth2 is not None:
            from plantbridge.connectors.oauth2 import ClientCredentials
            from plantbridge.connectors.tls import http_client

            auth = ClientCredentials(cfg.oauth2.token_url, cfg.oauth2.client_id,
                                     secret(cfg.oauth2.client_secret_env, f"plant {plant} erp oauth2"),
                                     scope=cfg.oauth2.scope, http=http_client(tls=cfg, timeout=cfg.timeout_s))
        password = secret(cfg.password_env, f"plant {plant} erp") if auth is None else None
        odata: ErpConnector = SapODataConnector(
            cfg.url, user=cfg.user or cfg.oauth2.client_id if cfg.oauth2 else cfg.user or "", password=password,
            client=cfg.client, timeout=cfg.timeout_s, plant=plant, ud_codes=ud, notification_type=cfg.notification_type,
            overdelivery_tolerance_pct=cfg.overdelivery_tolerance_pct, tls=cfg, auth=auth)
        return odata
    if cfg.kind == "sap_rfc":
        from plantbridge.connectors.sap_rfc import SapRfcConnector

        params = dict(cfg.rfc)
        if cfg.password_env:
            params["passwd"] = secret(cfg.password_env, f"plant {plant} erp rfc")
        try:
            rfc: ErpConnector = SapRfcConnector.from_params(plant=plant, **params)
            return rfc
        except RuntimeError as err:  # pyrfc / SAP's SDK missing on this machine
            raise ConfigurationError(f"plant {plant}: {err}") from err
    if cfg.kind == "odoo":
        return odoo_connector(plant, cfg)
    raise ConfigurationError(f"plant {plant}: erp kind {cfg.kind} has no connector in this release")


def odoo_connector(plant: str, cfg: ErpConfig, units: dict[str, str] | None = None) -> OdooConnector:

    assert cfg.url is not None and cfg.database is not None and cfg.login is not None
    api = cfg.api or ("json2" if cfg.version == "19.0" else "jsonrpc")
    rpc = OdooRpc(cfg.url, database=cfg.database, login=cfg.login, timeout=cfg.timeout_s, api=api,
                  api_key=secret(cfg.api_key_env, f"plant {plant} erp"))
    return OdooConnector(rpc, plant=plant, units=units, backorder=cfg.backorder, losses=cfg.losses)


class ConfiguredRegistry:
    """Plants with a file get their configured systems; a plant without one is an error.

    `reference` stands behind every `kind: reference` system and the notifier.
    """

    def __init__(self, plants: dict[str, PlantConfig], reference: ReferenceSource) -> None:
        if not plants:
            raise ConfigurationError(
                "no plant files: name a folder of plant files (PLANTBRIDGE_PLANTS_DIR / --plants-dir), one per "
                "plant; a plant on the reference systems says `erp: {kind: reference}`")
        self.plants = plants
        self.reference = reference.systems()
        self._systems: dict[str, Systems] = {}
        for code, cfg in plants.items():
            try:
                self._systems[code] = self._build(code, cfg)
            except ValueError as err:
                raise ConfigurationError(f"plant {code}: {err}") from err

    def _build(self, plant: str, cfg: PlantConfig) -> Systems:
        ref = self.reference
        mes: MesPort = ref.mes
        qms: QmsPort = ref.qms
        wms: WmsPort = ref.wms
        if cfg.mes.kind == "rest":
            from plantbridge.connectors.mes_rest import MesRestConnector

            mes_rest: MesConnector = MesRestConnector.from_plant(cfg)
            mes = mes_rest
        if cfg.qms.kind == "rest":
            from plantbridge.connectors.qms_rest import QmsRestConnector

            qms_rest: QmsConnector = QmsRestConnector.from_plant(cfg)
            qms = qms_rest
        if cfg.wms.kind == "rest":
            from plantbridge.connectors.wms_rest import WmsRestConnector

            wms_rest: WmsConnector = WmsRestConnector.from_plant(cfg)
            wms = wms_rest
        odoo = cfg.erp.kind == "odoo"
        erp = odoo_connector(plant, cfg.erp, cfg.xref.units) if odoo else build_erp(plant, cfg.erp, ref)
        return Systems(erp=erp, mes=mes, qms=qms, wms=wms, notify=ref.notify)

    def for_plant(self, plant: str) -> Systems:
        try:
            return self._systems[plant]
        except KeyError:
            raise ConfigurationError(
                f"plant {plant} has no plant file (configured: {', '.join(sorted(self._systems))})") from None

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


