"""The published contracts: one JSON Schema per inbound message (and the acknowledgement) and version.

Each entry names a contract, its version and how its schema is made (from the pydantic model the
gateway validates with). The gateway serves them (`GET /v1/schemas`, routes_schemas.py); the same
documents are checked in as `docs/schemas/v<version>/<name>.json`
(`python -m plantbridge.gateway.contracts_doc docs/schemas`), and tests/gateway/test_schemas.py
fails when the models differ from them or when a change breaks a published version
(gateway/schema_compat.py). A breaking change is a new version: add an entry with `version + 1`
and keep the old entry (its model frozen as it was) until its sunset (gateway/deprecations.py).

Versions are per contract, independent of the URL's `/v1/`. The LOIPRO IDoc has no JSON Schema: it
is SAP's XML document type (its segments are described in the OpenAPI document).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from plantbridge.canonical.ack import Acknowledgement
from plantbridge.canonical.events import REQUIRED_FIELDS, EventType, PlantEvent
from plantbridge.canonical.rollup import TelemetryBatch
from plantbridge.gateway.erp_intake import CloudEvent
from plantbridge.gateway.odoo_intake import OdooWebhook

DIALECT = "https://json-schema.org/draft/2020-12/schema"
NAME_PATTERN = r"^[a-z][a-z0-9._-]{0,63}$"
Direction = Literal["inbound", "outbound"]


@dataclass(frozen=True)
class Contract:
    name: str
    version: int
    title: str
    direction: Direction  # inbound: the gateway reads it; outbound: the gateway writes it (schema_compat.py)
    endpoint: str  # where it travels, for people
    build: Callable[[], dict[str, Any]]

    @property
    def path(self) -> str:
        return f"/v1/schemas/{self.name}/{self.version}"

    def schema(self) -> dict[str, Any]:
        body = self.build()
        head = {"$schema": DIALECT, "$id": f"urn:plantbridge:schema:{self.name}:{self.version}",
                "title": body.pop("title", self.title),
                "x-contract": {"name": self.name, "version": self.version, "direction": self.direction,
                               "endpoint": self.endpoint}}
        return {**head, **body}


def _model(model: type[BaseModel], mode: Literal["validation", "serialization"] = "validation",
           ) -> Callable[[], dict[str, Any]]:
    return lambda: model.model_json_schema(mode=mode, by_alias=True)


def _plant_event_of(event_type: EventType) -> Callable[[], dict[str, Any]]:
    """A plant event of one type: `event_type` fixed, the fields that type needs required (as the model checks)."""

    def build() -> dict[str, Any]:
        schema = PlantEvent.model_json_schema()
        props = schema["properties"]
        props["event_type"] = {"const": event_type.value, "type": "string"}
        needed = REQUIRED_FIELDS[event_type]
        schema["required"] = [*schema["required"], *(n for n in needed if n not in schema["required"])]
        for name in needed:  # present, so not null
            branches = props[name].get("anyOf")
            if branches:
                rest = [b for b in branches if b != {"type": "null"}]
                props[name] = {k: v for k, v in props[name].items() if k not in ("anyOf", "default")}
                props[name].update(rest[0] if len(rest) == 1 else {"anyOf": rest})
        schema["title"] = f"PlantEvent {event_type.value}"
        return schema

    return build


def _plant_event_batch() -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "required": ["events"],
            "description": "Up to 500 plant events, each validated and answered on its own (contract `plant-event`)",
            "properties": {"events": {"type": "array", "minItems": 1, "maxItems": 500,
                                      "items": {"$ref": "urn:plantbridge:schema:plant-event:1"}}}}


PLANT_EVENTS = "POST /v1/plant/events"
CONTRACTS: tuple[Contract, ...] = (
    Contract("plant-event", 1, "PlantEvent", "inbound", PLANT_EVENTS, _model(PlantEvent)),
    *(Contract(f"plant-event.{t.value}", 1, f"PlantEvent {t.value}", "inbound", PLANT_EVENTS, _plant_event_of(t))
      for t in EventType),
    Contract("plant-event-batch", 1, "PlantEventBatch", "inbound", PLANT_EVENTS, _plant_event_batch),
    Contract("acknowledgement", 1, "Acknowledgement", "outbound", f"answer of {PLANT_EVENTS}; MES acknowledgement",
             _model(Acknowledgement, "serialization")),
    Contract("sap-business-event", 1, "CloudEvent", "inbound", "POST /v1/erp/sap/events", _model(CloudEvent)),
    Contract("odoo-webhook", 1, "OdooWebhook", "inbound", "POST /v1/erp/odoo/events/{plant}/{token}",
             _model(OdooWebhook)),
    Contract("telemetry-batch", 1, "TelemetryBatch", "inbound", "POST /v1/plant/telemetry", _model(TelemetryBatch)),
)


def find(name: str, version: int) -> Contract | None:
    return next((c for c in CONTRACTS if c.name == name and c.version == version), None)


def relative_file(contract: Contract) -> str:
    """Where a contract version is checked in, under `docs/schemas/`."""
    return f"v{contract.version}/{contract.name}.json"
