"""Example bodies for `/docs`: one per plant event type (ARCHITECTURE §7), a batch, ERP messages."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from plantbridge.canonical.events import PlantEvent

_BASE = {"source": "mes-1000", "plant": "1000", "order": "1004157", "occurred_at": "2026-11-26T10:15:00+01:00"}


def _ev(n: int, event_type: str, **fields: Any) -> dict[str, Any]:
    return {"event_id": f"mes1000-{n:06d}", "event_type": event_type, **_BASE, **fields}


PLANT_EVENT_EXAMPLES: dict[str, dict[str, Any]] = {
    "operation_started": _ev(122, "operation_started", operation="0010", work_center="ASSY-01"),
    "operation_confirmed": _ev(
        123, "operation_confirmed", operation="0010", work_center="ASSY-01",
        yield_qty={"quantity": "40", "uom": "H87"}, scrap_qty={"quantity": "2", "uom": "H87"}, reason="SCR-01",
        final=False, activities={"setup_min": "15", "machine_min": "120", "labor_min": "110"}, personnel="4711"),
    "material_consumed": _ev(124, "material_consumed", material="RM-STEEL", quantity={"quantity": "12.5", "uom": "KGM"},
                             batch="B-0042", storage_location="0001"),
    "downtime_started": _ev(125, "downtime_started", work_center="ASSY-01", equipment="PRESS-07", reason="DT-JAM"),
    "downtime_ended": _ev(126, "downtime_ended", work_center="ASSY-01", equipment="PRESS-07"),
    "quality_result": _ev(127, "quality_result", passed=True, characteristics=[
        {"name": "bore diameter", "value": "12.02", "unit": "MMT", "ok": True}]),
    "quality_hold": _ev(128, "quality_hold", reason="porosity found on housing"),
    "quality_disposition": _ev(129, "quality_disposition", decision="rework", quantity={"quantity": "5", "uom": "H87"}),
    "maintenance_requested": _ev(130, "maintenance_requested", equipment="PRESS-07", priority=2,
                                 description="hydraulic leak at the main cylinder"),
}

BATCH_EXAMPLE = {"events": [PLANT_EVENT_EXAMPLES["operation_started"], PLANT_EVENT_EXAMPLES["operation_confirmed"]]}

SAP_EVENT_EXAMPLE = {
    "specversion": "1.0",
    "type": "sap.s4.beh.productionorder.v1.ProductionOrder.Changed.v1",
    "source": "/default/sap.s4.beh/S4HCLNT100",
    "subject": "productionorder:1004157",
    "id": "a823e884-5edc-4194-a81a-f1f0a1b1e0a3",
    "time": "2026-11-26T09:00:00Z",
    "datacontenttype": "application/json",
    "data": {"ManufacturingOrder": "1004157"},
}

IDOC_EXAMPLE = """<?xml version="1.0" encoding="UTF-8"?>
<LOIPRO05 xmlns="urn:sap-com:document:sap:idoc:soap:messages"><IDOC BEGIN="1">
<EDI_DC40 SEGMENT="1"><MESTYP>LOIPRO</MESTYP><DOCNUM>0000000000430094</DOCNUM></EDI_DC40>
<E1AFKOL SEGMENT="1"><AUFNR>000001004157</AUFNR><WERKS>1000</WERKS><MATNR>FG-1000</MATNR><GAMNG>100</GAMNG>
<GMEIN>ST</GMEIN><GSTRP>20261126</GSTRP><GLTRP>20261127</GLTRP><E1JSTKL SEGMENT="1"><STAT>I0002</STAT></E1JSTKL>
<E1AFFLL SEGMENT="1"><E1AFVOL SEGMENT="1"><VORNR>0010</VORNR><ARBPL>ASSY-01</ARBPL><STEUS>PP01</STEUS>
<LTXA1>Assembly</LTXA1><MGVRG>100</MGVRG><MEINH>ST</MEINH>
<E1RESBL SEGMENT="1"><POSNR>0010</POSNR><MATNR>RM-STEEL</MATNR><BDMNG>50</BDMNG><MEINS>KG</MEINS><LGORT>0001</LGORT>
<RGEKZ>X</RGEKZ><RSNUM>0001950857</RSNUM><RSPOS>0001</RSPOS></E1RESBL></E1AFVOL></E1AFFLL></E1AFKOL>
</IDOC></LOIPRO05>"""

RESOLVE_EXAMPLES = {
    "retry": {"action": "retry", "comment": "posting period opened"},
    "skip": {"action": "skip", "comment": "posted in the next shift's batch"},
    "override": {"action": "override", "document": "ProdnOrdConf2 00001234/00000001", "comment": "posted by hand"},
}


def _schema(tp: Any) -> dict[str, Any]:
    schema = TypeAdapter(tp).json_schema(ref_template="#/components/schemas/{model}")
    return schema


def plant_events_body() -> tuple[dict[str, Any], dict[str, Any]]:
    """The request body of /v1/plant/events for the OpenAPI document, and the schemas it refers to."""
    event = _schema(PlantEvent)
    defs: dict[str, Any] = event.pop("$defs", {})
    defs["PlantEvent"] = event
    batch = {"type": "object", "title": "PlantEventBatch", "additionalProperties": False, "required": ["events"],
             "properties": {"events": {
                 "type": "array", "minItems": 1, "maxItems": 500,
                 # Not `$ref: PlantEvent`: the gateway validates each item on its own and answers it in
                 # `results` (a malformed one gets its own 422 there, the others go on), so any item is admitted.
                 "items": {"description": "A plant event (schema `PlantEvent`), validated and answered on its own: "
                                          "a malformed item gets `http_status` 422 in `results` and does not stop "
                                          "the others"}}}}
    defs["PlantEventBatch"] = batch
    examples = {name: {"summary": name, "value": value} for name, value in PLANT_EVENT_EXAMPLES.items()}
    examples["batch"] = {"summary": "a batch of events (answered per event, in order)", "value": BATCH_EXAMPLE}
    body = {"required": True, "content": {"application/json": {
        "schema": {"oneOf": [{"$ref": "#/components/schemas/PlantEvent"},
                             {"$ref": "#/components/schemas/PlantEventBatch"}]},
        "examples": examples}}}
    return body, defs


def json_body(example: dict[str, Any], examples: dict[str, Any] | None = None) -> dict[str, Any]:
    content: dict[str, Any] = {"schema": {"type": "object"}, "example": example}
    if examples:
        content = {"schema": {"type": "object"},
                   "examples": {k: {"summary": k, "value": v} for k, v in examples.items()}}
    return {"requestBody": {"required": True, "content": {"application/json": content}}}
