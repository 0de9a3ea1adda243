"""Exactly-once, counted in the ERP's own data (as an auditor would): postings with an external key twice
(doubled) and postings of plantbridge without one (unkeyed).

SAP (the simulator's `GET /admin/state`): a confirmation carries the key in `ExternalSystemConfirmation`; a
material document plantbridge posts carries it in `ReferenceDocument` + `MaterialDocumentHeaderText`, one a
confirmation posts (backflush) is keyed through that confirmation; a maintenance notification carries it in
`MaintNotifExtReferenceNumber`; a usage decision is one per inspection lot. Odoo: `demo_odoo.count_odoo`
(records with two `__plantbridge__` external ids, records of plantbridge's without one).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Audit:
    postings: Counter[str] = field(default_factory=Counter)  # by kind
    doubled: list[str] = field(default_factory=list)  # "kind key xN"
    unkeyed: list[str] = field(default_factory=list)  # "kind number"

    def add(self, other: Audit) -> Audit:
        return Audit(self.postings + other.postings, self.doubled + other.doubled, self.unkeyed + other.unkeyed)


def _order_of(row: dict[str, Any]) -> set[str]:
    return {v.lstrip("0") for k, v in row.items() if "Order" in k and isinstance(v, str) and v.strip("0").isdigit()}


def audit_sap(state: dict[str, Any], orders: set[str] | None = None) -> Audit:
    """Doubled and unkeyed postings in the SAP simulator's data (of `orders` when given: numbers without
    leading zeros)."""
    def ours(row: dict[str, Any]) -> bool:
        return orders is None or bool(_order_of(row) & orders)

    out = Audit()
    keys: Counter[tuple[str, str]] = Counter()
    linked: set[str] = set()  # material documents posted by a confirmation
    for c in state.get("confirmations", []):
        linked |= {str(m.get("MaterialDocument")) for m in c.get("goods_movements", [])}
        if not ours(c):
            continue
        kind = "confirmation (reversal)" if c.get("IsReversal") else "confirmation"
        out.postings[kind] += 1
        key = str(c.get("ExternalSystemConfirmation") or "")
        if key:
            keys["confirmation", key] += 1
        else:
            out.unkeyed.append(f"{kind} {c.get('ConfirmationGroup')}/{c.get('ConfirmationCount')}")
    for d in state.get("material_documents", []):
        if not any(ours(i) for i in d.get("items", [])):
            continue
        out.postings["material document"] += 1
        number = str(d.get("MaterialDocument"))
        ref, text = d.get("ReferenceDocument"), d.get("MaterialDocumentHeaderText")
        if ref and text:
            keys["material document", f"{ref}{text}"] += 1
        elif number not in linked:
            out.unkeyed.append(f"material document {d.get('MaterialDocumentYear')}/{number}")
    lots = {str(lot.get("InspectionLot")) for lot in state.get("inspection_lots", []) if ours(lot)}
    for ud in state.get("usage_decisions", []):
        if str(ud.get("InspectionLot")) in lots:
            out.postings["usage decision"] += 1
            keys["usage decision", str(ud.get("InspectionLot"))] += 1
    for n in state.get("notifications", []):
        if orders is not None and not any(f"Order {o}," in str(n.get("MaintNotificationLongText")) for o in orders):
            continue
        out.postings["maintenance notification"] += 1
        ref = str(n.get("MaintNotifExtReferenceNumber") or "")
        if ref:
            keys["maintenance notification", ref] += 1
        else:
            out.unkeyed.append(f"maintenance notification {n.get('MaintenanceNotification')}")
    out.doubled = [f"SAP {kind} {key} x{n}" for (kind, key), n in sorted(keys.items()) if n > 1]
    out.unkeyed = [f"SAP {u}" for u in out.unkeyed]
    return out
