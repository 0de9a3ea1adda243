"""The QMS connector ("QualityHub QMS", REST v1): inspection results on the order's inspection lot.

`inspection` records the characteristics of a quality result on the order's lot:

- the lot: the order's open lot (not ``DISPOSITIONED``), preferring the one plantbridge created
  (``externalRef`` ``pb-{plant}-{order}``); when the QMS has none for the order, plantbridge
  creates it (origin ``FINAL`` for a result of the last operation or of the order, ``PRODUCTION``
  for an earlier operation; no inspection plan). The lot is created with that fixed externalRef,
  so a lost answer to the create is harmless (the QMS answers 200 with the same lot).
  Results on a dispositioned lot are the QMS's ``LOT_CLOSED`` (a business rejection).
- characteristic ``name`` -> ``charCode``: the lot plan's characteristic whose code or description
  equals the name (case-insensitive), else the name with every character outside
  ``[0-9A-Za-z._:/-]`` replaced by ``-`` (max 40); ``value`` -> ``measured``; ``ok`` -> ``verdict``
  ``ACCEPT``/``REJECT``; ``unit`` -> the QMS's unit (``mm``, ``kg``, ``pcs``, ...; UN/ECE and SAP
  codes are translated, e.g. ``MMT`` -> ``mm``; an unknown unit is ``XREF-UNIT``).
- a result without characteristics records one qualitative characteristic ``OVERALL``
  (``PASS``/``FAIL``).
- the lot quantity's unit: `xref.units` read backwards when the QMS accepts the code, else the
  built-in table (``H87`` -> ``pcs``, ``KGM`` -> ``kg``, ...).

On `retry` the lot's results are read first: characteristics already recorded with the same value
and verdict are not sent again (all of them: `replayed=True`, no request). Re-sending would not
double anything anyway (a new result replaces the earlier one of its characteristic), but it would
overwrite a later correction made in the QMS.
"""

from __future__ import annotations

import re
from typing import Any

from plantbridge.canonical.commands import Inspection, StepResult
from plantbridge.canonical.order import ProductionOrder
from plantbridge.canonical.units import UnknownUnitError, normalize_unit
from plantbridge.connectors.errors import BusinessRejection
from plantbridge.connectors.rest_common import (
    RestConnector,
    decimal_text,
    local_unit,
)

SYSTEM = "qms"
API = "/qms/v1"
QMS_UNITS = frozenset({"pcs", "kg", "g", "m", "mm", "um", "N", "Nm", "bar", "degC", "%"})
# UN/ECE Rec. 20 -> the QMS's units (N = NEW, Nm = NU, degC = CEL, bar = BAR, um = 4H).
QMS_UNIT_OF: dict[str, str] = {
    "H87": "pcs", "C62": "pcs", "EA": "pcs", "KGM": "kg", "GRM": "g", "MTR": "m", "MMT": "mm", "4H": "um",
    "NEW": "N", "NU": "Nm", "BAR": "bar", "CEL": "degC", "P1": "%",
}
_NOT_REF = re.compile(r"[^0-9A-Za-z._:/-]+")
DISPOSITIONED = "DISPOSITIONED"


def char_code(name: str) -> str:
    code = _NOT_REF.sub("-", name.strip()).strip("-")[:40]
    return code or "CHAR"


class QmsRestConnector(RestConnector):
    SYSTEM = SYSTEM
    DEV_KEY = "qms-dev-key"

    # --- mapping --------------------------------------------------------------------------

    def lot_unit(self, unece: str) -> str:
        return local_unit(unece, plant=self.plant, system=SYSTEM, accepted=QMS_UNITS, builtin=QMS_UNIT_OF)

    @staticmethod
    def measuring_unit(unit: str, characteristic: str) -> str:
        if unit in QMS_UNITS:
            return unit
        for known in QMS_UNITS:
            if known.lower() == unit.lower():
                return known
        try:
            unece = normalize_unit(unit)
        except UnknownUnitError:
            unece = unit.upper()
        if unece in QMS_UNIT_OF:
            return QMS_UNIT_OF[unece]
        raise BusinessRejection(
            f"characteristic {characteristic}: the QMS has no unit for {unit!r} "
            f"(it accepts {', '.join(sorted(QMS_UNITS))})",
            system=SYSTEM, code="XREF-UNIT",
        )

    def results(self, cmd: Inspection, plan: list[dict[str, Any]]) -> list[dict[str, Any]]:
        by_name: dict[str, str] = {}
        for ch in plan:
            by_name[str(ch["charCode"]).lower()] = ch["charCode"]
            if ch.get("description"):
                by_name.setdefault(str(ch["description"]).lower(), ch["charCode"])
        if not cmd.characteristics:
            return [{"charCode": "OVERALL", "measured": "PASS" if cmd.passed else "FAIL",
                     "verdict": "ACCEPT" if cmd.passed else "REJECT"}]
        out = []
        for ch in cmd.characteristics:
            name = str(ch.get("name") or "")
            code = by_name.get(name.lower(), char_code(name))
            result: dict[str, Any] = {
                "charCode": code,
                "measured": str(ch.get("value") if ch.get("value") is not None else "")[:40] or "-",
                "verdict": "ACCEPT" if ch.get("ok") else "REJECT",
            }
            unit = ch.get("unit")
            if isinstance(unit, str) and unit:
                result["unit"] = self.measuring_unit(unit, name)
            out.append(result)
        return out

    # --- lots -----------------------------------------------------------------------------

    def external_ref(self, order: ProductionOrder) -> str:
        return f"pb-{order.plant}-{order.number}"

    async def lot_for(self, order: ProductionOrder, cmd: Inspection) -> tuple[dict[str, Any], bool]:
        """The order's open lot, created when there is none; (lot, created)."""
        found = await self.http.json("GET", f"{API}/lots", params={"order": order.number},
                                     doing=f"list inspection lots of order {order.number}")
        lots = sorted(found.get("items", []), key=lambda lot: str(lot["lotId"]))
        ours = self.external_ref(order)
        open_lots = [lot for lot in lots if lot.get("status") != DISPOSITIONED]
        for lot in open_lots:
            if lot.get("externalRef") == ours:
                return lot, False
        if open_lots:
            return open_lots[-1], False
        if lots:
            return lots[-1], False  # dispositioned: the QMS refuses results (LOT_CLOSED)
        final = cmd.operation is None or cmd.operation == order.last_operation.number
        body = {
            "orderRef": order.number,
            "plant": order.plant,
            "material": order.material,
            "lotQty": decimal_text(order.quantity.quantity),
            "unit": self.lot_unit(order.quantity.uom),
            "origin": "FINAL" if final else "PRODUCTION",
            "externalRef": ours,
        }
        response = await self.http.call("POST", f"{API}/lots", json=body,
                                        doing=f"create the inspection lot of order {order.number}")
        return response.json(), response.status_code == 201

    # --- the port -------------------------------------------------------------------------

    async def inspection(self, order: ProductionOrder, cmd: Inspection, *, key: str, retry: bool) -> StepResult:
        lot, created = await self.lot_for(order, cmd)
        lot_id = lot["lotId"]
        results = self.results(cmd, lot.get("plan") or [])
        if retry and not created:
            recorded = {r["charCode"]: r for r in lot.get("results", [])}
            results = [
                r for r in results
                if not (r["charCode"] in recorded and recorded[r["charCode"]].get("measured") == r["measured"]
                        and recorded[r["charCode"]].get("verdict") == r["verdict"])
            ]
            if not results:
                return StepResult(documents=[f"QMS {lot_id}"], replayed=True,
                                  message=f"results already recorded on {lot_id} ({lot.get('verdict')})")
        done = await self.http.json("POST", f"{API}/lots/{lot_id}/results", json={"results": results},
                                    doing=f"record results on {lot_id}")
        return StepResult(
            documents=[f"QMS {lot_id}"],
            message=f"{len(results)} result(s) on {lot_id}{' (new lot)' if created else ''}: "
                    f"{done['status']}, verdict {done['verdict']}",
        )
