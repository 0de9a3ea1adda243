"""What changed between two versions of an order as the ERP holds it: a pure function, no Temporal.

The saga reads the order again after an ERP change message (S/4HANA `ProductionOrder.Changed`, a
repeated LOIPRO IDoc) and compares it with the version it holds. `is_newer` decides whether a
version may replace the one applied: SAP's `LastChangeDateTime` (YYYYMMDDhhmmss) orders versions,
so an older or repeated one is ignored; a content hash (`sha:…`, for sources without a stamp) only
says "different", and then the difference itself decides (an empty one changes nothing).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from plantbridge.canonical.order import Component, ErpStatus, Operation, ProductionOrder

_STAMP = re.compile(r"^[0-9]{14,}$")


def is_newer(candidate: str | None, applied: str | None) -> bool:
    """May an order of version `candidate` replace the applied one? Unknown versions: yes (the diff decides)."""
    if candidate is None or applied is None:
        return True
    if _STAMP.match(candidate) and _STAMP.match(applied):
        if len(candidate) != len(applied):  # e.g. an IDoc SERIAL (20 digits) beside LastChangeDateTime (14)
            return candidate[:14] > applied[:14]
        return candidate > applied
    return candidate != applied


@dataclass(frozen=True)
class QuantityChange:
    old: Decimal
    new: Decimal
    uom: str


@dataclass(frozen=True)
class DateChange:
    old_start: date | None
    old_end: date | None
    new_start: date | None
    new_end: date | None


@dataclass
class OrderDiff:
    """Each kind of change between two versions; empty when nothing the saga acts on changed."""

    quantity: QuantityChange | None = None
    tolerance: tuple[Decimal, Decimal] | None = None
    dates: DateChange | None = None
    operations_added: list[Operation] = field(default_factory=list)
    operations_changed: list[tuple[Operation, Operation]] = field(default_factory=list)
    operations_removed: list[Operation] = field(default_factory=list)
    components_added: list[Component] = field(default_factory=list)
    components_changed: list[tuple[Component, Component]] = field(default_factory=list)
    components_removed: list[Component] = field(default_factory=list)
    status_set: list[str] = field(default_factory=list)  # ErpStatus field names newly set
    status_reset: list[str] = field(default_factory=list)
    release_revoked: bool = False

    @property
    def empty(self) -> bool:
        return not self.kinds

    @property
    def plant_relevant(self) -> bool:
        """Whether the MES work order must follow (quantity, dates, routing, BOM)."""
        return bool(self.quantity or self.dates or self.operations_added or self.operations_changed
                    or self.operations_removed or self.components_added or self.components_changed
                    or self.components_removed)

    @property
    def kinds(self) -> list[str]:
        found = [name for name, value in (
            ("quantity", self.quantity), ("tolerance", self.tolerance), ("dates", self.dates),
            ("operations_added", self.operations_added), ("operations_changed", self.operations_changed),
            ("operations_removed", self.operations_removed), ("components_added", self.components_added),
            ("components_changed", self.components_changed), ("components_removed", self.components_removed),
            ("status_set", self.status_set), ("status_reset", self.status_reset),
            ("release_revoked", self.release_revoked)) if value]
        return found

    def summary(self) -> str:
        """One line for the timeline, the audit and the MES change order."""
        parts: list[str] = []
        if self.quantity:
            parts.append(f"quantity {self.quantity.old} → {self.quantity.new} {self.quantity.uom}")
        if self.tolerance:
            parts.append(f"tolerance {self.tolerance[0]}% → {self.tolerance[1]}%")
        if self.dates:
            d = self.dates
            parts.append(f"dates {d.old_start}..{d.old_end} → {d.new_start}..{d.new_end}")
        for label, ops in (("added", self.operations_added), ("removed", self.operations_removed)):
            if ops:
                parts.append(f"operation(s) {label} {', '.join(o.number for o in ops)}")
        if self.operations_changed:
            parts.append("operation(s) changed " + ", ".join(new.number for _, new in self.operations_changed))
        for label, comps in (("added", self.components_added), ("removed", self.components_removed)):
            if comps:
                parts.append(f"component(s) {label} " + ", ".join(f"{c.item} {c.material}" for c in comps))
        if self.components_changed:
            changed = ", ".join(f"{n.item} {n.material}" for _, n in self.components_changed)
            parts.append(f"component(s) changed {changed}")
        if self.status_set:
            parts.append("ERP status set: " + ", ".join(self.status_set))
        if self.status_reset:
            parts.append("ERP status reset: " + ", ".join(self.status_reset))
        if self.release_revoked:
            parts.append("release revoked")
        return "; ".join(parts) or "no change the saga acts on"


def _op_key(op: Operation) -> tuple[object, ...]:
    return (op.work_center, op.control_key, op.description, op.planned_qty, op.confirmation_required)


def _comp_key(comp: Component) -> str:
    return comp.item


def diff_orders(old: ProductionOrder, new: ProductionOrder) -> OrderDiff:
    """The difference between the order the saga holds (`old`) and the ERP's current one (`new`)."""
    d = OrderDiff()
    if old.quantity != new.quantity:
        d.quantity = QuantityChange(old.quantity.quantity, new.quantity.quantity, new.quantity.uom)
    if old.overdelivery_tolerance_pct != new.overdelivery_tolerance_pct:
        d.tolerance = (old.overdelivery_tolerance_pct, new.overdelivery_tolerance_pct)
    if (old.start_date, old.end_date) != (new.start_date, new.end_date):
        d.dates = DateChange(old.start_date, old.end_date, new.start_date, new.end_date)
    old_ops = {op.number: op for op in old.operations}
    new_ops = {op.number: op for op in new.operations}
    d.operations_added = [op for n, op in new_ops.items() if n not in old_ops]
    d.operations_removed = [op for n, op in old_ops.items() if n not in new_ops]
    d.operations_changed = [(old_ops[n], op) for n, op in new_ops.items()
                            if n in old_ops and _op_key(old_ops[n]) != _op_key(op)]
    old_comps = {_comp_key(c): c for c in old.components}
    new_comps = {_comp_key(c): c for c in new.components}
    d.components_added = [c for k, c in new_comps.items() if k not in old_comps]
    d.components_removed = [c for k, c in old_comps.items() if k not in new_comps]
    d.components_changed = [(old_comps[k], c) for k, c in new_comps.items() if k in old_comps and old_comps[k] != c]
    for name in ErpStatus.model_fields:
        was, now = getattr(old.erp_status, name), getattr(new.erp_status, name)
        if now and not was:
            d.status_set.append(name)
        elif was and not now:
            d.status_reset.append(name)
    d.release_revoked = old.released and not new.released
    return d
