"""ISA-95 / B2MML V0600 documents: a shift summary as ProductionPerformance, validated before it leaves.

The Business To Manufacturing Markup Language (B2MML) is used courtesy of MESA International.
The schemas in `xsd/` are MESA's, unmodified (see xsd/SOURCE.txt).

Mapping of a shift summary:
- `ProductionPerformance` (ID `{plant}-{day}-{shift}`, HierarchyScope = the plant as Site, Start/End
  = the shift window, PublishedDate = the shift end so the bytes depend on the shift only);
- one `ProductionResponse` per order worked (ProductionRequestID = the order), one
  `SegmentResponse` per operation and work center: `MaterialActual` Produced (yield), scrap and
  rework as `ProductionData`;
- one `ProductionResponse` `OEE-{work center}` per work center and `OEE-{plant}` for the plant: an
  `EquipmentActual` whose properties are the OEE factors and their inputs, downtime by reason as
  `ProductionData`, labour hours as `PersonnelActual`.
Every document is validated with xmlschema against the XSD; an invalid one raises `InvalidB2MML`.
"""

from __future__ import annotations

from decimal import Decimal
from functools import cache
from pathlib import Path
from xml.etree import ElementTree as ET

import xmlschema

from plantbridge.batch.summary import Oee, OperationFigures, ShiftSummary

NS = "http://www.mesa.org/xml/B2MML-V0600"
XSD_DIR = Path(__file__).with_name("xsd")
PERFORMANCE_XSD = "B2MML-V0600-ProductionPerformance.xsd"
SCHEDULE_XSD = "B2MML-V0600-ProductionSchedule.xsd"


class InvalidB2MML(ValueError):
    """A produced document does not validate against MESA's schema: it must not leave."""


@cache
def schema(name: str = PERFORMANCE_XSD) -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(XSD_DIR / name))


def validate(document: bytes, name: str = PERFORMANCE_XSD) -> None:
    errors = list(schema(name).iter_errors(document.decode()))
    if errors:
        detail = "; ".join(f"{e.path}: {e.reason}" for e in errors[:5])
        raise InvalidB2MML(f"B2MML document invalid against {name} ({len(errors)} errors): {detail}")


def _el(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    e = ET.SubElement(parent, f"{{{NS}}}{tag}")
    if text is not None:
        e.text = text
    return e


def _num(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text if text not in ("-0",) else "0"


def _scope(parent: ET.Element, equipment: str, level: str) -> None:
    scope = _el(parent, "HierarchyScope")
    _el(scope, "EquipmentID", equipment)
    _el(scope, "EquipmentElementLevel", level)


def _value(parent: ET.Element, tag: str, value: str, data_type: str, uom: str | None = None) -> None:
    v = _el(parent, tag)
    _el(v, "ValueString" if tag == "Value" else "QuantityString", value)
    _el(v, "DataType", data_type)
    if uom:
        _el(v, "UnitOfMeasure", uom)


def _data(parent: ET.Element, ident: str, value: Decimal, uom: str | None = None, tag: str = "ProductionData") -> None:
    d = _el(parent, tag)
    _el(d, "ID", ident)
    _value(d, "Value", _num(value), "decimal" if uom is None else "Measure", uom)


OEE_FIELDS: tuple[tuple[str, str, str | None], ...] = (
    ("Availability", "availability", None), ("Performance", "performance", None),
    ("Quality", "quality", None), ("OEE", "oee", None),
    ("PerformanceUncapped", "performance_uncapped", None),
    ("ShiftTime", "shift_seconds", "SEC"), ("PlannedStopTime", "planned_stop_seconds", "SEC"),
    ("PlannedProductionTime", "planned_production_seconds", "SEC"), ("DowntimeTime", "downtime_seconds", "SEC"),
    ("RunTime", "run_seconds", "SEC"), ("IdealCycleTime", "ideal_cycle_time_s", "SEC"),
    ("IdealRunTime", "ideal_run_seconds", "SEC"), ("TotalCount", "total_count", None),
    ("GoodCount", "good_count", None),
)


def _oee_response(root: ET.Element, ident: str, equipment: str, level: str, oee: Oee, *,
                  downtime: list[tuple[str, Decimal, int]], labour_hours: Decimal | None,
                  start: str, end: str) -> None:
    resp = _el(root, "ProductionResponse")
    _el(resp, "ID", ident)
    _scope(resp, equipment, level)
    _el(resp, "StartTime", start)
    _el(resp, "EndTime", end)
    seg = _el(resp, "SegmentResponse")
    _el(seg, "ID", f"{ident}-shift")
    _el(seg, "Description", f"OEE and its inputs for {level} {equipment}")
    _scope(seg, equipment, level)
    _el(seg, "ActualStartTime", start)
    _el(seg, "ActualEndTime", end)
    for reason, seconds, count in downtime:
        d = _el(seg, "ProductionData")
        _el(d, "ID", f"Downtime:{reason}")
        _el(d, "Description", f"{count} occurrence(s)")
        _value(d, "Value", _num(seconds), "Measure", "SEC")
    if labour_hours is not None:
        person = _el(seg, "PersonnelActual")
        _el(person, "PersonnelClassID", "Operator")
        _value(person, "Quantity", _num(labour_hours), "Measure", "HUR")
    eq = _el(seg, "EquipmentActual")
    _el(eq, "EquipmentID", equipment)
    for name, attr, uom in OEE_FIELDS:
        value = getattr(oee, attr)
        if value is None:
            continue
        prop = _el(eq, "EquipmentActualProperty")
        _el(prop, "ID", name)
        _value(prop, "Value", _num(value), "decimal" if uom is None else "Measure", uom)


def shift_performance(summary: ShiftSummary) -> bytes:
    """The shift summary as a B2MML V0600 ProductionPerformance document, validated."""
    ET.register_namespace("", NS)
    start, end = summary.start.isoformat(), summary.end.isoformat()
    root = ET.Element(f"{{{NS}}}ProductionPerformance")
    _el(root, "ID", f"{summary.plant}-{summary.plant_day}-{summary.shift}")
    so_far = f", in progress: figures up to {end}" if summary.in_progress else ""
    _el(root, "Description", f"Shift summary of plant {summary.plant}, shift {summary.shift} of "
                             f"{summary.plant_day} ({summary.timezone}){so_far}")
    _scope(root, summary.plant, "Site")
    _el(root, "PublishedDate", end)
    _el(root, "StartTime", start)
    _el(root, "EndTime", end)
    orders: dict[str, list[tuple[str, OperationFigures]]] = {}
    for wc in summary.work_centers:
        for op in wc.operations:
            orders.setdefault(op.order, []).append((wc.work_center, op))
    for order in sorted(orders):
        resp = _el(root, "ProductionResponse")
        _el(resp, "ID", order)
        _el(resp, "ProductionRequestID", order)
        for wc_code, op in sorted(orders[order], key=lambda x: (x[1].operation, x[0])):
            seg = _el(resp, "SegmentResponse")
            _el(seg, "ID", f"{order}-{op.operation}-{wc_code}")
            _el(seg, "ProcessSegmentID", op.operation)
            _scope(seg, wc_code, "WorkCenter")
            _data(seg, "ScrapQuantity", op.scrap_qty, op.uom)
            _data(seg, "ReworkQuantity", op.rework_qty, op.uom)
            _data(seg, "Confirmations", Decimal(op.confirmations))
            mat = _el(seg, "MaterialActual")
            _el(mat, "MaterialUse", "Produced")
            _value(mat, "Quantity", _num(op.yield_qty), "Quantity", op.uom)
        _el(resp, "ResponseState", "Completed" if all(op.final for _, op in orders[order]) else "Running")
    for wc in summary.work_centers:
        _oee_response(root, f"OEE-{wc.work_center}", wc.work_center, "WorkCenter", wc.oee,
                      downtime=[(d.reason, d.seconds, d.occurrences) for d in wc.downtime],
                      labour_hours=wc.labour_hours, start=start, end=end)
    _oee_response(root, f"OEE-{summary.plant}", summary.plant, "Site", summary.oee, downtime=[],
                  labour_hours=None, start=start, end=end)
    _el(root, "PerformanceState", "Running" if summary.in_progress else "Completed")
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    validate(document)
    return document
