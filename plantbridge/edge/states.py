"""Canonical equipment state from OPC 40001-1 MachineryItemState or a PackML (OPC 30050 / TR88) state code.

The Machinery state is recognised by the State object's NodeId (``CurrentState/Id``) or its
``StateNumber`` (``CurrentState/Number``), never by the display text, which servers localise.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from asyncua import ua

MACHINERY_URI = "http://opcfoundation.org/UA/Machinery/"


class EquipmentState(StrEnum):
    RUNNING = "running"
    IDLE = "idle"
    STOPPED = "stopped"
    DOWN = "down"
    UNAVAILABLE = "unavailable"


# Machinery NodeSet: State object NodeId (numeric, in the Machinery namespace) and StateNumber.
MACHINERY_STATE_IDS: dict[int, str] = {
    5005: "NotAvailable",
    5004: "OutOfService",
    5007: "NotExecuting",
    5006: "Executing",
}
MACHINERY_STATE_NUMBERS: dict[int, str] = {0: "NotAvailable", 1: "OutOfService", 2: "NotExecuting", 3: "Executing"}

_MACHINERY_CANONICAL = {
    "Executing": EquipmentState.RUNNING,
    "NotExecuting": EquipmentState.IDLE,  # STOPPED when a stop reason is given
    "OutOfService": EquipmentState.DOWN,
    "NotAvailable": EquipmentState.UNAVAILABLE,
}

# PackML state codes (ISA-TR88.00.02 / OPC 30050 StateNumber).
PACKML_COMPLETE = 17
PACKML_CANONICAL: dict[int, EquipmentState] = {
    0: EquipmentState.UNAVAILABLE,  # Undefined
    1: EquipmentState.STOPPED,  # Clearing
    2: EquipmentState.STOPPED,  # Stopped
    3: EquipmentState.IDLE,  # Starting
    4: EquipmentState.IDLE,  # Idle
    5: EquipmentState.STOPPED,  # Suspended (starved/blocked)
    6: EquipmentState.RUNNING,  # Execute
    7: EquipmentState.STOPPED,  # Stopping
    8: EquipmentState.DOWN,  # Aborting
    9: EquipmentState.DOWN,  # Aborted
    10: EquipmentState.DOWN,  # Holding
    11: EquipmentState.DOWN,  # Held
    12: EquipmentState.IDLE,  # Unholding
    13: EquipmentState.STOPPED,  # Suspending
    14: EquipmentState.IDLE,  # Unsuspending
    15: EquipmentState.IDLE,  # Resetting
    16: EquipmentState.IDLE,  # Completing
    17: EquipmentState.IDLE,  # Complete
}


def machinery_state_name(value: Any, machinery_ns: int | None) -> str | None:
    """The MachineryItemState (``Executing``...) of a CurrentState/Id NodeId or a StateNumber, else None."""
    if isinstance(value, ua.NodeId):
        if machinery_ns is not None and value.NamespaceIndex != machinery_ns:
            return None
        if isinstance(value.Identifier, int):
            return MACHINERY_STATE_IDS.get(value.Identifier)
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return MACHINERY_STATE_NUMBERS.get(value)
    if isinstance(value, str) and value in _MACHINERY_CANONICAL:
        return value  # the State's BrowseName, as MQTT/JSON publishers send it
    return None


def canonical_state(source: str, raw: Any, stop_reason: str, machinery_ns: int | None = None) -> EquipmentState | None:
    """Map a raw state value to the canonical state; None when the value is not understood."""
    if source == "packml":
        if isinstance(raw, str) and raw.strip().lstrip("-").isdigit():
            raw = int(raw)
        if isinstance(raw, int) and not isinstance(raw, bool):
            return PACKML_CANONICAL.get(raw)
        return None
    name = machinery_state_name(raw, machinery_ns)
    if name is None:
        return None
    state = _MACHINERY_CANONICAL[name]
    if state is EquipmentState.IDLE and stop_reason:
        return EquipmentState.STOPPED
    return state
