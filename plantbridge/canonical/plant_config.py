"""A plant's configuration: its systems, cross-references and policy (one file per plant).

Onboarding a plant is a new file, not new code. Credentials are never in the file: it names the
environment variables that hold them. The cross-references translate the plant's own codes (its
MES's work centers, reason codes, units) into the ERP's, before an event becomes canonical.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from plantbridge.canonical.events import EventType
from plantbridge.canonical.fields import PlantCode
from plantbridge.canonical.ownership import SourceKind, event_sources
from plantbridge.canonical.policy import PlantPolicy
from plantbridge.canonical.units import UnknownUnitError, normalize_unit

ErpKind = Literal["sap_odata", "sap_rfc", "odoo", "reference"]
SystemKind = Literal["rest", "reference"]


class UsageDecisionCode(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code_group: str = Field(max_length=8)
    code: str = Field(max_length=4)
    valuation: Literal["A", "R"]


class ErpConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: ErpKind = "reference"
    # OData: the host; the services sit below /sap/opu/odata/sap/.
    url: str | None = None
    client: str = "100"
    user: str | None = None
    password_env: str | None = Field(default=None, description="environment variable holding the password")
    timeout_s: float = Field(default=30.0, gt=0, le=600)
    # SAP RFC (pyrfc) connection parameters, e.g. ashost, sysnr, client, user; password via password_env.
    rfc: dict[str, str] = Field(default_factory=dict)
    # S/4HANA's order API does not expose the over-delivery tolerance (UEBTO): the plant states it.
    overdelivery_tolerance_pct: Decimal = Field(default=Decimal(0), ge=0, le=100)
    # Usage decision per disposition: code group, code, valuation (A accepted / R rejected).
    usage_decisions: dict[Literal["release", "rework", "scrap"], UsageDecisionCode] = Field(default_factory=dict)
    notification_type: str = Field(default="M2", max_length=2)

    @model_validator(mode="after")
    def _endpoint(self) -> ErpConfig:
        if self.kind in ("sap_odata", "odoo") and not self.url:
            raise ValueError(f"erp kind {self.kind} needs `url` (the system's address)")
        if self.kind in ("sap_odata", "odoo") and not (self.user and self.password_env):
            raise ValueError(f"erp kind {self.kind} needs `user` and `password_env`")
        if self.kind == "sap_rfc" and not ({"ashost", "sysnr"} <= set(self.rfc) or "mshost" in self.rfc):
            raise ValueError("erp kind sap_rfc needs `rfc` with ashost and sysnr (or mshost)")
        return self


class SystemConfig(BaseModel):
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
    # Which source kinds may send which event types (overrides of canonical/ownership.py's defaults).
    event_sources: dict[EventType, list[SourceKind]] = Field(default_factory=dict)

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
