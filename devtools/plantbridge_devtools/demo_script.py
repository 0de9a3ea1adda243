"""What the demo's simulated plant does: the ERP orders it creates and the MES scripts it runs.

Two lanes run side by side (the hybrid landscape): the SAP lane (plants 1000 and 2000 alternate) and
the Odoo lane (plant 3000, manufacturing orders in the Odoo simulator). Order `i` of a lane:

- every order: start 0010, two partial reports with scrap and a scrap code, final report of 0010,
  start 0020, final report of 0020 (the MES's own codes and units: PCS / KG, L1-ASSY / L2-MACH);
- order 0: machine M01 (OPC UA) stops for maintenance while it runs 0010: the edge agent turns it into
  downtime events; the MES raises a maintenance request;
- order 1: its final 0010 report arrives while SAP's posting period is closed: SAP rejects the
  confirmation, a supervisor opens the period and retries the exception through the gateway;
- order 2: the shop floor puts it on quality hold; QA releases the hold through the gateway;
- order 3: the planner cancels it through the gateway after the first reports;
- order 4 (runs of 5 orders or more): the planner raises its quantity in SAP by 30 % after release
  (CO02: SAP emits `ProductionOrder.Changed`); the MES work order follows and the extra yield posts;
- order 5 (runs of 6 orders or more): SAP sets it technically complete (TECO) after the first reports;
  the saga completes without posting anything more.

In the Odoo lane the same roles, where Odoo differs (no quantity raise or TECO there): order 0's downtime is
reported by the MES (resource L3-EXTR, no machine on the edge), its maintenance request becomes an Odoo
``maintenance.request``; order 1's final 0010 report is refused by Odoo with an ``AccessError`` (the
integration user lost the right to create work center time records), an administrator gives it back and a
supervisor retries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

HOLD_ORDER, REJECT_ORDER, DOWNTIME_ORDER, CANCEL_ORDER = 2, 1, 0, 3
RAISE_ORDER, TECO_ORDER = 4, 5
RAISE_PCT = 30


@dataclass(frozen=True)
class PlantSetup:
    plant: str
    material: str
    unit_sap: str  # the unit SAP's order is in
    quantity: int
    storage_location: str
    work_centers: tuple[str, str]  # ERP work centers of 0010, 0020
    component: str
    component_qty: int
    wms_location: str
    wms_unit: str
    scrap_codes: tuple[str, str]  # MES scrap codes
    inspection: str  # SAP inspection lot origin: 03 in-process (lot at release), 04 at goods receipt
    erp: str = "sap"
    mes_resource: str = ""  # the MES resource of operation 0010 (MES-reported downtime)


PLANTS: dict[str, PlantSetup] = {
    "1000": PlantSetup("1000", "FG-PUMP-100", "ST", 100, "0001", ("ASSY-01", "TEST-01"), "RM-HOUSING", 100,
                       "RM-A01", "EA", ("S-SCRATCH", "S-DENT"), "03"),
    "2000": PlantSetup("2000", "CMP-PA66-GF30", "KG", 500, "0002", ("MIX-20", "PACK-20"), "RM-PA66", 500,
                       "RM-B01", "KG", ("S-DIM", "S-MATL"), "04"),
    # Odoo: the unit is Odoo's uom name (`m` = MTR); the MES reports metres as `M`, the component in `KG`.
    "3000": PlantSetup("3000", "CBL-NYY-3X2.5", "m", 1200, "", ("EXTR-30", "SPOOL-30"), "RM-CU-WIRE", 180,
                       "RM-B01", "KG", ("S-SETUP", "S-OTHER"), "", erp="odoo", mes_resource="L3-EXTR"),
}
ODOO_PLANT = "3000"


def plant_of(i: int) -> PlantSetup:
    return PLANTS["1000" if i % 2 == 0 else "2000"]


def odoo_production(i: int) -> dict[str, Any]:
    """Body of the Odoo simulator's ``POST /admin/productions``: a confirmed MO (the automation rule fires)."""
    p = PLANTS[ODOO_PLANT]
    return {"product": p.material, "quantity": p.quantity, "uom": p.unit_sap, "origin": f"plantbridge demo #{i}",
            "operations": [{"name": "Extrude", "workcenter": p.work_centers[0]},
                           {"name": "Spool", "workcenter": p.work_centers[1]}],
            "components": [{"product": p.component, "quantity": p.component_qty, "uom": "kg", "operation": 0}],
            "confirm": True}


def sap_order(i: int) -> dict[str, Any]:
    p = plant_of(i)
    return {
        "plant": p.plant, "material": p.material, "quantity": str(p.quantity), "unit": p.unit_sap,
        "storage_location": p.storage_location, "tolerance_pct": "10", "inspection_lot_origin": p.inspection,
        "operations": [
            {"operation": "0010", "work_center": p.work_centers[0], "description": "assemble" if p.plant == "1000"
             else "compound"},
            {"operation": "0020", "work_center": p.work_centers[1], "description": "test" if p.plant == "1000"
             else "bag"},
        ],
        "components": [{"item": "0010", "material": p.component, "quantity": str(p.component_qty),
                        "unit": p.unit_sap, "storage_location": p.storage_location, "backflush": True,
                        "operation": "0010"}],
    }


def quantity_of(i: int, p: PlantSetup | None = None) -> int:
    """The order's quantity as the plant produces it: raised after release for `RAISE_ORDER` (SAP lane)."""
    setup = p or plant_of(i)
    raised = i == RAISE_ORDER and setup.erp != "odoo"
    return setup.quantity * (100 + RAISE_PCT) // 100 if raised else setup.quantity


def quantities(i: int, p: PlantSetup | None = None) -> tuple[int, int, int]:
    """(good in the partial reports, scrap, good in the final report of 0010)."""
    p = p or plant_of(i)
    quantity = quantity_of(i, p)
    partial = p.quantity * 2 // 5
    scrap = 1 + i % 3
    return partial, scrap, quantity - partial - scrap


def first_part(i: int, p: PlantSetup | None = None) -> list[dict[str, Any]]:
    """Start and partial reports of 0010, with the order's extra shop-floor happenings."""
    p = p or plant_of(i)
    partial, scrap, _ = quantities(i, p)
    actions: list[dict[str, Any]] = [
        {"do": "start", "step": "0010"},
        {"do": "report", "step": "0010", "good": partial, "scrap": scrap, "scrapCode": p.scrap_codes[i % 2],
         "chunks": 2, "everyMin": 20, "laborMin": 40, "machineMin": 35},
    ]
    if i == DOWNTIME_ORDER and p.erp == "odoo":  # no machine on the edge here: the MES reports the downtime
        actions.append({"do": "downtime", "code": "D-MECH", "minutes": 12, "resource": p.mes_resource,
                        "equipment": p.work_centers[0]})
        actions.append({"do": "maintenance", "equipment": p.work_centers[0], "priority": 2,
                        "text": "extruder 3: screw drive overheating"})
    elif i == DOWNTIME_ORDER:  # the downtime itself comes from machine M01 through the edge agent
        actions.append({"do": "maintenance", "equipment": "PRESS-01", "priority": 2,
                        "text": "hydraulic leak at press 1"})
    if i == HOLD_ORDER:
        actions.append({"do": "hold", "code": "H-QUAL", "text": "burr on flange, 3 of 20 samples"})
    return actions


def final_0010(i: int, p: PlantSetup | None = None) -> list[dict[str, Any]]:
    _, _, rest = quantities(i, p)
    return [{"do": "finish", "step": "0010", "good": rest, "laborMin": 30, "machineMin": 25}]


def operation_0020(i: int, p: PlantSetup | None = None) -> list[dict[str, Any]]:
    p = p or plant_of(i)
    _, scrap, _ = quantities(i, p)
    return [
        {"do": "start", "step": "0020"},
        {"do": "finish", "step": "0020", "good": quantity_of(i, p) - scrap, "laborMin": 20, "machineMin": 15},
    ]


# The MES scripts' virtual clock (see `script_minutes`): a script is stamped to end at the present (never
# ahead of the wall clock, so a shift summary cut at "now" holds it), continuing the order's clock.
STEP_MIN = 0.05  # minutes between two actions of a script (3 s)


def script_minutes(actions: list[dict[str, Any]], step_min: float = STEP_MIN) -> float:
    """Virtual minutes from a script's first event to its last, as the MES script runner counts them."""
    total = step_min * (len(actions) - 1)
    for a in actions:
        if a["do"] in ("report", "finish"):
            total += float(a.get("everyMin", 1)) * (int(a.get("chunks", 1)) - 1)
        elif a["do"] in ("downtime", "wait"):
            total += float(a.get("minutes", 5 if a["do"] == "downtime" else 0))
    return total


MACHINE = "M01"  # the OPC UA machine on work center ASSY-01 of plant 1000 (plants/dev/edge-1000.yaml)
