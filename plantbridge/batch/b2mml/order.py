"""One production order in B2MML V0600: what was released (ProductionSchedule) and what was
reported (ProductionPerformance), from the saga's state (its `summary` query).

- ProductionSchedule `{plant}-{order}`: one `ProductionRequest` (ID = the order, the material as
  ProductProductionRuleID) with one `SegmentRequirement` per operation: its work center as
  `EquipmentRequirement`, the planned quantity as `MaterialProducedRequirement` and the order's
  components as `MaterialConsumedRequirement` of their operation. PublishedDate = the release.
- ProductionPerformance `{plant}-{order}`: one `ProductionResponse` with one `SegmentResponse` per
  operation: yield as `MaterialActual` Produced, scrap/rework/confirmations as `ProductionData`,
  state Completed (final confirmation), Running or Ready.

Both documents are validated against MESA's XSDs before they are returned.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from decimal import Decimal
from xml.etree import ElementTree as ET

from plantbridge.batch.b2mml import (
    NS,
    PERFORMANCE_XSD,
    SCHEDULE_XSD,
    _data,
    _el,
    _num,
    _scope,
    _value,
    validate,
)
from plantbridge.canonical.saga import SagaState

# Saga states whose order is finished (the ProductionPerformance is then "Completed").
_DONE = {"completed", "posted", "closed"}


def _request_state(s: SagaState) -> str:
    if s.state.value == "cancelled":
        return "Aborted"
    if s.hold is not None:
        return "Holding"
    if s.state.value in _DONE:
        return "Completed"
    return "Running" if any(op.started or op.confirmations for op in s.operations.values()) else "Ready"


def _stamp(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def order_schedule(s: SagaState) -> bytes:
    """What was released: the order as a ProductionSchedule, validated."""
    ET.register_namespace("", NS)
    o = s.order
    root = ET.Element(f"{{{NS}}}ProductionSchedule")
    _el(root, "ID", f"{o.plant}-{o.number}")
    _el(root, "Description", f"Production order {o.number} of plant {o.plant} as released")
    _scope(root, o.plant, "Site")
    if (published := _stamp(s.released_at)) is not None:
        _el(root, "PublishedDate", published)
    req = _el(root, "ProductionRequest")
    _el(req, "ID", o.number)
    if o.description:
        _el(req, "Description", o.description)
    _el(req, "ProductProductionRuleID", o.material)
    _scope(req, o.plant, "Site")
    if o.start_date is not None:
        _el(req, "StartTime", f"{o.start_date.isoformat()}T00:00:00")
    if o.end_date is not None:
        _el(req, "EndTime", f"{o.end_date.isoformat()}T23:59:59")
    for op in o.operations:
        seg = _el(req, "SegmentRequirement")
        _el(seg, "ID", f"{o.number}-{op.number}")
        _el(seg, "ProcessSegmentID", op.number)
        if op.description:
            _el(seg, "Description", op.description)
        _scope(seg, op.work_center, "WorkCenter")
        eq = _el(seg, "EquipmentRequirement")
        _el(eq, "EquipmentID", op.work_center)
        produced = _el(seg, "MaterialProducedRequirement")
        _el(produced, "MaterialDefinitionID", o.material)
        _value(produced, "Quantity", _num(op.planned_qty.quantity), "Quantity", op.planned_qty.uom)
        for c in o.components:
            if c.operation != op.number and not (c.operation is None and op is o.operations[0]):
                continue
            consumed = _el(seg, "MaterialConsumedRequirement")
            _el(consumed, "MaterialDefinitionID", c.material)
            if c.batch:
                _el(consumed, "MaterialLotID", c.batch)
            _value(consumed, "Quantity", _num(c.quantity.quantity), "Quantity", c.quantity.uom)
    _el(req, "RequestState", "Released" if o.released else "Forecast")
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    validate(document, SCHEDULE_XSD)
    return document


def order_performance(s: SagaState) -> bytes:
    """What was reported: the order's confirmed quantities as a ProductionPerformance, validated."""
    ET.register_namespace("", NS)
    o = s.order
    root = ET.Element(f"{{{NS}}}ProductionPerformance")
    _el(root, "ID", f"{o.plant}-{o.number}")
    _el(root, "Description", f"Production order {o.number} of plant {o.plant} as reported (saga state "
                             f"{s.state.value})")
    _scope(root, o.plant, "Site")
    if (published := _stamp(s.completed_at or s.released_at)) is not None:
        _el(root, "PublishedDate", published)
    resp = _el(root, "ProductionResponse")
    _el(resp, "ID", o.number)
    _el(resp, "ProductionRequestID", o.number)
    if (start := _stamp(s.released_at)) is not None:
        _el(resp, "StartTime", start)
    if (end := _stamp(s.completed_at)) is not None:
        _el(resp, "EndTime", end)
    for number in sorted(s.operations):
        op = s.operations[number]
        seg = _el(resp, "SegmentResponse")
        _el(seg, "ID", f"{o.number}-{op.number}")
        _el(seg, "ProcessSegmentID", op.number)
        _scope(seg, op.work_center, "WorkCenter")
        _data(seg, "PlannedQuantity", op.planned, op.uom)
        _data(seg, "ScrapQuantity", op.scrap_total, op.uom)
        _data(seg, "ReworkQuantity", op.rework_total, op.uom)
        _data(seg, "Confirmations", Decimal(op.confirmations))
        mat = _el(seg, "MaterialActual")
        _el(mat, "MaterialDefinitionID", o.material)
        _el(mat, "MaterialUse", "Produced")
        _value(mat, "Quantity", _num(op.yield_total), "Quantity", op.uom)
        state = "Completed" if op.final else ("Running" if op.started or op.confirmations else "Ready")
        _el(seg, "SegmentState", state)
    _el(resp, "ResponseState", _request_state(s))
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    validate(document, PERFORMANCE_XSD)
    return document


def order_documents(s: SagaState) -> list[tuple[str, bytes]]:
    """(file name, bytes) of both documents, named by the content hash (writing again is a no-op)."""
    out = []
    for kind, doc in (("schedule", order_schedule(s)), ("performance", order_performance(s))):
        digest = hashlib.sha256(doc).hexdigest()[:16]
        out.append((f"order_{s.order.plant}_{s.order.number}_{kind}_{digest}.xml", doc))
    return out
