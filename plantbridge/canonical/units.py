"""Units of measure: UN/ECE Recommendation 20 codes, and SAP's internal/commercial codes.

Canonical quantities always carry a UN/ECE Rec. 20 code (``H87`` piece, ``KGM`` kilogram, ...).
SAP stores an internal unit (``ST``, ``KG``) and shows a commercial one (``PC``, ``KG``); ERP
connectors translate at the edge with :func:`to_sap` / :func:`from_sap`. A plant's own codes are
mapped by its configuration before they reach the canonical world.
"""

from __future__ import annotations

# UN/ECE Rec. 20 codes plantbridge knows, with a human name (used in error messages and the UI).
UNECE_UNITS: dict[str, str] = {
    "H87": "piece",
    "C62": "one (unit)",
    "EA": "each",
    "PR": "pair",
    "SET": "set",
    "DZN": "dozen",
    "PK": "pack",
    "CT": "carton",
    "BX": "box",
    "KGM": "kilogram",
    "GRM": "gram",
    "MGM": "milligram",
    "TNE": "tonne",
    "LBR": "pound",
    "MTR": "metre",
    "CMT": "centimetre",
    "MMT": "millimetre",
    "KMT": "kilometre",
    "MTK": "square metre",
    "MTQ": "cubic metre",
    "LTR": "litre",
    "MLT": "millilitre",
    "HUR": "hour",
    "MIN": "minute",
    "SEC": "second",
    "DAY": "day",
    "KWH": "kilowatt hour",
    "P1": "percent",
}

# SAP internal (T006-MSEHI) and commercial (T006A-MSEH3) codes -> UN/ECE Rec. 20.
SAP_TO_UNECE: dict[str, str] = {
    "ST": "H87",
    "PC": "H87",
    "PCE": "H87",
    "EA": "EA",
    "PAA": "PR",
    "PAR": "PR",
    "SET": "SET",
    "DZ": "DZN",
    "PAK": "PK",
    "CAR": "CT",
    "KAR": "CT",
    "BOX": "BX",
    "KG": "KGM",
    "G": "GRM",
    "MG": "MGM",
    "TO": "TNE",
    "T": "TNE",
    "LB": "LBR",
    "M": "MTR",
    "CM": "CMT",
    "MM": "MMT",
    "KM": "KMT",
    "M2": "MTK",
    "M3": "MTQ",
    "L": "LTR",
    "ML": "MLT",
    "H": "HUR",
    "STD": "HUR",
    "MIN": "MIN",
    "S": "SEC",
    "TAG": "DAY",
    "D": "DAY",
    "KWH": "KWH",
    "%": "P1",
}

# The SAP internal code used when posting a UN/ECE unit back to SAP.
UNECE_TO_SAP: dict[str, str] = {
    "H87": "ST",
    "C62": "ST",
    "EA": "EA",
    "PR": "PAA",
    "SET": "SET",
    "DZN": "DZ",
    "PK": "PAK",
    "CT": "CAR",
    "BX": "BOX",
    "KGM": "KG",
    "GRM": "G",
    "MGM": "MG",
    "TNE": "TO",
    "LBR": "LB",
    "MTR": "M",
    "CMT": "CM",
    "MMT": "MM",
    "KMT": "KM",
    "MTK": "M2",
    "MTQ": "M3",
    "LTR": "L",
    "MLT": "ML",
    "HUR": "H",
    "MIN": "MIN",
    "SEC": "S",
    "DAY": "TAG",
    "KWH": "KWH",
    "P1": "%",
}


class UnknownUnitError(ValueError):
    """A unit code that is neither a known UN/ECE Rec. 20 code nor a known SAP unit."""


def normalize_unit(code: str) -> str:
    """Return the UN/ECE code for ``code`` (already UN/ECE, or a SAP internal/commercial code)."""
    value = code.strip().upper()
    if value in UNECE_UNITS:
        return value
    if value in SAP_TO_UNECE:
        return SAP_TO_UNECE[value]
    raise UnknownUnitError(
        f"unit {code!r} is not a UN/ECE Rec. 20 code plantbridge knows (e.g. H87 piece, KGM kilogram, "
        "MTR metre); map the plant's own unit in the plant configuration"
    )


def from_sap(code: str) -> str:
    """SAP internal or commercial unit -> UN/ECE Rec. 20."""
    return normalize_unit(code)


def to_sap(code: str) -> str:
    """UN/ECE Rec. 20 unit -> SAP internal unit."""
    value = normalize_unit(code)
    return UNECE_TO_SAP.get(value, value)
