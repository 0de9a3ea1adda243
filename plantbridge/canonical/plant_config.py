"""A plant's configuration: its systems, cross-references and policy (one file per plant).

Onboarding a plant is a new file, not new code. Credentials are never in the file: it names the
environment variables that hold them. The cross-references translate the plant's own codes (its
MES's work centers, reason codes, units) into the ERP's, before an event becomes canonical.
"""

from __future__ import annotations

import ipaddress
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from plantbridge.canonical.batch_config import BatchConfig, ExportTarget
from plantbridge.canonical.events import EventType
from plantbridge.canonical.fields import PlantCode
from plantbridge.canonical.ownership import SourceKind, event_sources
from plantbridge.canonical.plant_time import WEEKDAYS, Shift, ShiftCalendar, Weekday, validate_zone_name
from plantbridge.canonical.policy import PlantPolicy
from plantbridge.canonical.units import UnknownUnitError, normalize_unit

ErpKind = Literal["sap_odata", "sap_rfc", "odoo", "reference"]
SystemKind = Literal["rest", "reference"]


class TlsSettings(BaseModel):
    """A connector's TLS (connectors/tls.py): the CAs to trust and the client certificate to show."""

    model_config = ConfigDict(extra="forbid")

    ca_bundle: str | None = Field(default=None, description="PEM file of the CAs trusted for the server certificate")
    client_cert: str | None = Field(default=None, description="PEM client certificate (mutual TLS)")
    client_key: str | None = Field(default=None, description="PEM private key of client_cert, when a separate file")

    @model_validator(mode="after")
    def _key_needs_cert(self) -> TlsSettings:
        if self.client_key and not self.client_cert:
            raise ValueError("client_key without client_cert")
        return self


def insecure_reason(url: str | None) -> str | None:
    """Why `url` is an insecure endpoint (clear HTTP to another host than this one), or None."""
    if not url or urlsplit(url).scheme != "http":
        return None
    host = (urlsplit(url).hostname or "").lower()
    if host in ("localhost", "localhost.localdomain"):
        return None
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        pass
    return f"{url} is clear HTTP to another host"


class OAuth2ClientCredentials(BaseModel):
    """OAuth 2.0 client credentials (SAP S/4HANA Cloud communication arrangements)."""

    model_config = ConfigDict(extra="forbid")

    token_url: str
    client_id: str
    client_secret_env: str = Field(description="environment variable holding the client secret")
    scope: str | None = None


class UsageDecisionCode(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code_group: str = Field(max_length=8)
    code: str = Field(max_length=4)
    valuation: Literal["A", "R"]


class ErpConfig(TlsSettings):
    model_config = ConfigDict(extra="forbid")

    kind: ErpKind = "reference"
    # OData: the host; the services sit below /sap/opu/odata/sap/.
    url: str | None = None
    client: str = "100"
    user: str | None = None
    password_env: str | None = Field(default=None, description="environment variable holding the password")
    # SAP OData: OAuth 2.0 client credentials instead of user + password (S/4HANA Cloud).
    oauth2: OAuth2ClientCredentials | None = None
    timeout_s: float = Field(default=30.0, gt=0, le=600)
    # SAP RFC (pyrfc) connection parameters, e.g. ashost, sysnr, client, user; password via password_env.
    rfc: dict[str, str] = Field(default_factory=dict)
    # S/4HANA's order API does not expose the over-delivery tolerance (UEBTO): the plant states it.
    overdelivery_tolerance_pct: Decimal = Field(default=Decimal(0), ge=0, le=100)
    # Usage decision per disposition: code group, code, valuation (A accepted / R rejected).
    usage_decisions: dict[Literal["release", "rework", "scrap"], UsageDecisionCode] = Field(default_factory=dict)
    notification_type: str = Field(default="M2", max_length=2)
    # Odoo: database, login and API key (environment variable); version played and API spoken.
    database: str | None = None
    login: str | None = None
    api_key_env: str | None = Field(default=None, description="environment variable holding the Odoo API key")
    version: Literal["17.0", "18.0", "19.0"] = "19.0"
    api: Literal["json2", "jsonrpc"] | None = Field(default=None, description="default: json2 on 19.0, else jsonrpc")
    backorder: bool = Field(default=False, description="Odoo: a short MO gets a backorder (else it is closed)")
    # Odoo: plant downtime reason -> loss external id (e.g. mrp.block_reason1 Equipment Failure).
    losses: dict[str, str] = Field(default_factory=dict)
    # Odoo: the automation rule's webhook token (environment variable), part of the webhook URL.
    webhook_token_env: str | None = None
    # Odoo: how often the release poller (workflow odoo-poller:{plant}) asks for confirmed MOs.
    poll_interval_s: float = Field(default=30.0, gt=0, le=3600)
    # SAP: the plant codes (WERKS) this plant carries in LOIPRO IDocs where they differ from the
    # canonical code (e.g. a five-character plant such as HZ001); the gateway maps them on intake.
    idoc_plants: list[Annotated[str, Field(min_length=1, max_length=10)]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _endpoint(self) -> ErpConfig:
        if self.kind in ("sap_odata", "odoo") and not self.url:
            raise ValueError(f"erp kind {self.kind} needs `url` (the system's address)")
        if self.kind == "sap_odata" and not (self.user and self.password_env) and self.oauth2 is None:
            raise ValueError(f"erp kind {self.kind} needs `user` and `password_env` (or `oauth2`)")
        if self.kind == "odoo" and not (self.database and self.login and self.api_key_env):
            raise ValueError("erp kind odoo needs `database`, `login` and `api_key_env`")
        if self.kind == "odoo" and self.api == "json2" and self.version != "19.0":
            raise ValueError(f"Odoo {self.version} has no JSON-2 API: use api: jsonrpc")
        if self.kind == "sap_rfc" and not ({"ashost", "sysnr"} <= set(self.rfc) or "mshost" in self.rfc):
            raise ValueError("erp kind sap_rfc needs `rfc` with ashost and sysnr (or mshost)")
        return self


class SystemConfig(TlsSettings):
    """A plant system (MES, QMS, WMS) reached over its REST API."""

    model_config = ConfigDict(extra="forbid")

    kind: SystemKind = "reference"
    url: str | None = None
    api_key_env: str | None = None
    timeout_s: float = Field(default=15.0, gt=0, le=600)

    @model_validator(mode="after")
    def _endpoint(self) -> SystemConfig:
        if self.kind == "rest" and not self.url:
            raise ValueError("a rest system needs `url`")
        if self.kind == "rest" and not self.api_key_env:
            raise ValueError("a rest system needs `api_key_env` (the environment variable holding its API key)")
        return self


class WorkCenter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=8)
    name: str = ""
    # Ideal cycle time per unit, for OEE performance (the machine's CycleTimeMs where it has one).
    ideal_cycle_time_s: Decimal | None = Field(default=None, gt=0)


class CrossReferences(BaseModel):
    """Plant-local code -> ERP code."""

    model_config = ConfigDict(extra="forbid")

    work_centers: dict[str, str] = Field(default_factory=dict)
    reasons: dict[str, str] = Field(default_factory=dict)
    units: dict[str, str] = Field(default_factory=dict)
    # ERP storage location / work center / role (LINE, PROD-OUT, FG, QI) -> WMS location.
    locations: dict[str, str] = Field(default_factory=dict)

    @field_validator("units")
    @classmethod
    def _known_units(cls, units: dict[str, str]) -> dict[str, str]:
        for local, target in units.items():
            try:
                units[local] = normalize_unit(target)
            except UnknownUnitError as err:
                raise ValueError(f"units[{local!r}] = {target!r}: {err}") from None
        return units


class PlantConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plant: PlantCode
    name: str = ""
    erp: ErpConfig = Field(default_factory=ErpConfig)
    mes: SystemConfig = Field(default_factory=SystemConfig)
    qms: SystemConfig = Field(default_factory=SystemConfig)
    wms: SystemConfig = Field(default_factory=SystemConfig)
    work_centers: list[WorkCenter] = Field(default_factory=list)
    xref: CrossReferences = Field(default_factory=CrossReferences)
    policy: PlantPolicy = Field(default_factory=PlantPolicy)
    # Plant time (see canonical/plant_time.py): IANA zone, shift calendar.
    timezone: str = "UTC"
    shifts: list[Shift] = Field(default_factory=list)
    working_days: list[Weekday] = Field(default_factory=lambda: list(WEEKDAYS[:5]))
    holidays: list[date] = Field(default_factory=list)
    # Batch lane (see canonical/batch_config.py): scheduled jobs and where their documents go.
    exports: ExportTarget | None = None
    batch: BatchConfig = Field(default_factory=BatchConfig)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, name: str) -> str:
        return validate_zone_name(name)

    @property
    def calendar(self) -> ShiftCalendar:
        return ShiftCalendar(timezone=self.timezone, shifts=self.shifts, working_days=self.working_days,
                             holidays=self.holidays)

    @model_validator(mode="after")
    def _shift_names(self) -> PlantConfig:
        self.calendar  # noqa: B018 - validates unique shift names
        if "shift-summary" in self.batch.jobs and not self.shifts:
            raise ValueError("batch job shift-summary needs `shifts` (the plant's shift calendar)")
        return self
    # Clear `http://` to a host other than this machine is refused unless this says so (a warning
    # at worker start then).
    allow_insecure: bool = False
    # Which source kinds may send which event types (overrides of canonical/ownership.py's defaults).
    event_sources: dict[EventType, list[SourceKind]] = Field(default_factory=dict)

    def insecure_endpoints(self) -> list[str]:
        """The systems reached over clear HTTP off this machine."""
        systems = {"erp": self.erp.url, "mes": self.mes.url, "qms": self.qms.url, "wms": self.wms.url}
        if self.erp.oauth2 is not None:
            systems["erp oauth2"] = self.erp.oauth2.token_url
        return [f"{name}: {why}" for name, url in systems.items() if (why := insecure_reason(url))]

    @model_validator(mode="after")
    def _secure_endpoints(self) -> PlantConfig:
        if not self.allow_insecure and (insecure := self.insecure_endpoints()):
            raise ValueError(
                "; ".join(insecure) + " (use https://, or `allow_insecure: true` to accept clear HTTP)"
            )
        return self

    def event_rules(self) -> dict[EventType, tuple[SourceKind, ...]]:
        """The plant's rule table: event type -> the source kinds that may send it."""
        return event_sources(self.event_sources)

    @model_validator(mode="after")
    def _known_work_centers(self) -> PlantConfig:
        known = {wc.code for wc in self.work_centers}
        if known:
            for local, erp in self.xref.work_centers.items():
                if erp not in known:
                    raise ValueError(
                        f"xref.work_centers[{local!r}] = {erp!r} is not a work center of plant {self.plant} "
                        f"(known: {', '.join(sorted(known))})"
                    )
        return self

    def translate_event(self, raw: dict[str, Any]) -> dict[str, Any]:
        """Map a plant event's local codes to the ERP's (before canonical validation)."""
        out = dict(raw)
        wc = out.get("work_center")
        if isinstance(wc, str) and wc in self.xref.work_centers:
            out["work_center"] = self.xref.work_centers[wc]
        reason = out.get("reason")
        if isinstance(reason, str) and reason in self.xref.reasons:
            out["reason"] = self.xref.reasons[reason]
        for field in ("yield_qty", "scrap_qty", "rework_qty", "quantity"):
            qty = out.get(field)
            if isinstance(qty, dict) and isinstance(qty.get("uom"), str) and qty["uom"] in self.xref.units:
                out[field] = {**qty, "uom": self.xref.units[qty["uom"]]}
        return out
