"""Onboarding: write a plant file from a template; check one against the live systems.

`new_plant_file` fills a shipped template (`templates/<kind>.yaml`: sap_odata, sap_rfc, odoo,
reference) with the plant code and name. `check_plant_file` runs, in order, and reports each as
OK / WARN / FAIL (a FAIL fails the check; later checks that need what failed are skipped):

1. `file`: the plant file validates (the worker's own loader, same messages);
2. `secrets`: every environment variable the file names for a secret is set;
3. `erp`: the ERP answers and takes the credentials (SAP OData: the production order service's
   document with a CSRF fetch; Odoo: `common.authenticate`; SAP RFC: the SDK is present and
   `RFC_PING` answers; reference: nothing to reach);
4. `mes` / `qms` / `wms`: each REST system answers a read with the plant's API key;
5. `xref`: the cross-references against the MES's lists, as the master-data check compares them
   (an unmapped code FAILs, a stale mapping WARNs).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

import httpx

from plantbridge.batch.masterdata import compare, read_mes
from plantbridge.canonical.plant_config import PlantConfig, SystemConfig
from plantbridge.connectors.sap_odata_http import ODATA_ROOT
from plantbridge.connectors.sap_odata_payloads import PROD
from plantbridge.workers.plants import PlantConfigError, load_plant

TEMPLATES = ("sap_odata", "sap_rfc", "odoo", "reference")
Outcome = Literal["OK", "WARN", "FAIL", "SKIP"]
# A read per REST system that any key of the plant may make (the answer's status is what counts).
PROBES = {"mes": "/api/v2/units", "qms": "/qms/v1/lots?order=0", "wms": "/wms/api/references/PLANTBRIDGE-CHECK"}


@dataclass(frozen=True)
class Check:
    name: str
    outcome: Outcome
    detail: str


class TemplateError(ValueError):
    """No such template, or the plant file exists already."""


def template_text(kind: str) -> str:
    if kind not in TEMPLATES:
        raise TemplateError(f"no template {kind!r}; choose one of {', '.join(TEMPLATES)}")
    return resources.files("plantbridge.onboarding").joinpath(f"templates/{kind}.yaml").read_text(encoding="utf-8")


def new_plant_file(plant: str, kind: str, directory: Path, *, name: str | None = None,
                   overwrite: bool = False) -> Path:
    """`<directory>/<plant>.yaml` from the template; the file it wrote."""
    text = template_text(kind).replace("__NAME__", json.dumps(name or f"Plant {plant}")).replace("__PLANT__", plant)
    path = directory / f"{plant}.yaml"
    if path.exists() and not overwrite:
        raise TemplateError(f"{path} exists already (--force to overwrite it)")
    directory.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    try:
        load_plant(path)  # a template must give a valid file: no half-written onboarding
    except PlantConfigError:
        path.unlink()
        raise
    return path


def find_plant_file(plant: str, directory: Path) -> Path:
    for suffix in (".yaml", ".yml", ".toml"):
        path = directory / f"{plant}{suffix}"
        if path.is_file():
            return path
    raise TemplateError(f"no plant file for plant {plant} in {directory} ({plant}.yaml, .yml or .toml)")


def _secrets(cfg: PlantConfig) -> list[tuple[str, str]]:
    """(what, environment variable) of every secret the file names."""
    out = [("erp", env) for env in (cfg.erp.password_env, cfg.erp.api_key_env, cfg.erp.webhook_token_env) if env]
    for what, system in (("mes", cfg.mes), ("qms", cfg.qms), ("wms", cfg.wms)):
        if system.kind == "rest" and system.api_key_env:
            out.append((what, system.api_key_env))
    return out


def _transport_error(err: Exception) -> str:
    return f"unreachable: {type(err).__name__}: {err}"[:300]


async def check_erp(cfg: PlantConfig, transport: httpx.AsyncBaseTransport | None = None) -> Check:
    erp = cfg.erp
    if erp.kind == "reference":
        return Check("erp", "OK", "reference ERP (in process, nothing to reach)")
    if erp.kind == "sap_odata":
        assert erp.url is not None and erp.user is not None and erp.password_env is not None
        url = f"{erp.url.rstrip('/')}{ODATA_ROOT}{PROD}/"
        try:
            async with httpx.AsyncClient(timeout=erp.timeout_s, transport=transport) as http:
                r = await http.get(url, auth=httpx.BasicAuth(erp.user, os.environ.get(erp.password_env, "")),
                                   params={"sap-client": erp.client},
                                   headers={"X-CSRF-Token": "Fetch", "Accept": "application/json",
                                            "sap-client": erp.client})
        except httpx.HTTPError as err:
            return Check("erp", "FAIL", f"SAP {erp.url}: {_transport_error(err)}")
        if r.status_code in (401, 403):
            return Check("erp", "FAIL", f"SAP {erp.url} refused user {erp.user} on client {erp.client} "
                                        f"(HTTP {r.status_code}): check the user and {erp.password_env}")
        if r.status_code != 200:
            return Check("erp", "FAIL", f"SAP {url} answered HTTP {r.status_code}: {r.text[:200]}")
        token = r.headers.get("x-csrf-token", "")
        if not token or token.lower() == "required":
            return Check("erp", "FAIL", f"SAP {url} answered without a CSRF token")
        return Check("erp", "OK", f"SAP {erp.url} client {erp.client}: {PROD} answers, user {erp.user} logged on")
    if erp.kind == "odoo":
        from plantbridge.connectors.errors import BusinessRejection, TransientError
        from plantbridge.workers.registry import ConfigurationError, odoo_connector

        try:
            connector = odoo_connector(cfg.plant, erp)
        except ConfigurationError as err:
            return Check("erp", "FAIL", str(err))
        try:
            uid = await connector.rpc.uid()
        except BusinessRejection as err:
            return Check("erp", "FAIL", f"Odoo {erp.url}: {err}")
        except TransientError as err:
            return Check("erp", "FAIL", f"Odoo {erp.url}: {err}")
        finally:
            await connector.rpc.aclose()
        return Check("erp", "OK", f"Odoo {erp.url} database {erp.database}: login {erp.login} is uid {uid}")
    # sap_rfc: the SDK must be on this machine, and the system must answer RFC_PING.
    from plantbridge.workers.registry import ConfigurationError as NotBuilt
    from plantbridge.workers.registry import build_erp

    try:
        rfc = build_erp(cfg.plant, erp, None)  # type: ignore[arg-type]  # not the reference kind
    except NotBuilt as err:
        return Check("erp", "FAIL", str(err))
    ping = getattr(rfc, "ping", None)
    if ping is None:
        return Check("erp", "WARN", "SAP RFC connector built; this release cannot ping the system")
    try:
        await ping()
    except Exception as err:  # pyrfc's errors: logon, communication
        return Check("erp", "FAIL", f"SAP RFC: {type(err).__name__}: {err}"[:300])
    return Check("erp", "OK", "SAP RFC: RFC_PING answered")


async def check_system(what: str, system: SystemConfig, transport: httpx.AsyncBaseTransport | None = None) -> Check:
    if system.kind == "reference":
        return Check(what, "OK", f"reference {what.upper()} (in process, nothing to reach)")
    assert system.url is not None
    key = os.environ.get(system.api_key_env or "", "")
    try:
        async with httpx.AsyncClient(base_url=system.url.rstrip("/"), timeout=system.timeout_s,
                                     transport=transport) as http:
            r = await http.get(PROBES[what], headers={"X-API-Key": key, "Accept": "application/json"})
    except httpx.HTTPError as err:
        return Check(what, "FAIL", f"{system.url}: {_transport_error(err)}")
    if r.status_code in (401, 403):
        return Check(what, "FAIL", f"{system.url} refused the API key in {system.api_key_env} (HTTP {r.status_code})")
    if r.status_code >= 500:
        return Check(what, "FAIL", f"{system.url} answered HTTP {r.status_code}: {r.text[:200]}")
    return Check(what, "OK", f"{system.url} answers (HTTP {r.status_code}), API key accepted")


async def check_xref(cfg: PlantConfig, transport: httpx.AsyncBaseTransport | None = None) -> list[Check]:
    if cfg.mes.kind != "rest":
        return [Check("xref", "OK", "MES is the reference MES: its codes are the ERP's")]
    try:
        mes = await read_mes(cfg, transport=transport)
    except httpx.HTTPError as err:
        return [Check("xref", "FAIL", f"the MES's code lists could not be read: {err}"[:300])]
    findings = compare(cfg, mes, set())
    if not findings:
        assert mes is not None
        return [Check("xref", "OK", f"every MES code is mapped ({len(mes.resources)} resources, {len(mes.units)} "
                                    f"units, {len(mes.reasons)} reason codes)")]
    return [Check(f"xref.{f.kind}", "FAIL" if f.problem == "unmapped" else "WARN", f"{f.problem}: {f.detail}")
            for f in findings]


async def check_plant_file(path: Path, *, plant: str | None = None,
                           transport: httpx.AsyncBaseTransport | None = None) -> list[Check]:
    """Every check, in order (see the module's docstring)."""
    try:
        cfg = load_plant(path)
    except (PlantConfigError, OSError) as err:
        return [Check("file", "FAIL", str(err))]
    if plant is not None and cfg.plant != plant:
        return [Check("file", "FAIL", f"{path}: the file is for plant {cfg.plant}, not {plant}")]
    checks = [Check("file", "OK", f"{path}: plant {cfg.plant} ({cfg.erp.kind}), {len(cfg.shifts)} shifts, "
                                  f"{len(cfg.work_centers)} work centers")]
    missing = [f"{env} ({what})" for what, env in _secrets(cfg) if not os.environ.get(env)]
    checks.append(Check("secrets", "FAIL", f"not set: {', '.join(missing)}") if missing else
                  Check("secrets", "OK", f"{len(_secrets(cfg))} environment variables set"))
    checks.append(await check_erp(cfg, transport))
    for what, system in (("mes", cfg.mes), ("qms", cfg.qms), ("wms", cfg.wms)):
        checks.append(await check_system(what, system, transport))
    mes_ok = next(c for c in checks if c.name == "mes").outcome == "OK"
    if mes_ok:
        checks += await check_xref(cfg, transport)
    else:
        checks.append(Check("xref", "SKIP", "the MES does not answer: cross-references not compared"))
    return checks


def failed(checks: list[Check]) -> bool:
    return any(c.outcome in ("FAIL", "SKIP") for c in checks)
