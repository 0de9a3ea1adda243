"""The MES's own code lists (not plantbridge's, not the ERP's: the plant config maps them)."""

from __future__ import annotations

# Units of measure of the MES.
UNITS: dict[str, str] = {
    "PCS": "pieces",
    "SET": "sets",
    "KG": "kilograms",
    "G": "grams",
    "M": "metres",
    "L": "litres",
}

# Scrap reason codes.
SCRAP_CODES: dict[str, str] = {
    "S-SCRATCH": "surface scratched",
    "S-DENT": "dented",
    "S-DIM": "dimension out of tolerance",
    "S-MATL": "material defect",
    "S-SETUP": "set-up scrap",
    "S-OTHER": "other",
}

# Downtime reason codes.
DOWNTIME_CODES: dict[str, str] = {
    "D-MECH": "mechanical breakdown",
    "D-ELEC": "electrical breakdown",
    "D-NOMAT": "waiting for material",
    "D-NOOP": "no operator",
    "D-SETUP": "changeover / set-up",
    "D-QUAL": "quality check",
    "D-PLAN": "planned maintenance",
}

# Hold reason codes.
HOLD_CODES: dict[str, str] = {
    "H-QUAL": "quality suspect",
    "H-MATL": "material problem",
    "H-ENG": "engineering hold",
    "H-CUST": "customer request",
}

# Resources known without a dispatch (any resource named in a routing is added).
DEFAULT_RESOURCES: tuple[str, ...] = ("L1-ASSY", "L1-PACK", "L2-MACH", "L2-PAINT", "L3-TEST")

# Work order statuses and step statuses.
WO_DISPATCHED = "DISPATCHED"
WO_IN_PROGRESS = "IN_PROGRESS"
WO_ON_HOLD = "ON_HOLD"
WO_COMPLETED = "COMPLETED"
WO_RECALLED = "RECALLED"
STEP_READY = "READY"
STEP_RUNNING = "RUNNING"
STEP_PAUSED = "PAUSED"
STEP_FINISHED = "FINISHED"
