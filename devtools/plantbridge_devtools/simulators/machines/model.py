"""The simulated machines' own model: specs, states, stop reasons and the running values.

Pure Python, no OPC UA: the server (``server.py``) mirrors these values into its address space, so a
restart of the OPC UA server keeps the machines' counters and states, as a PLC retains them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum, StrEnum
from typing import Any

UINT32_MAX = 2**32 - 1

_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class MachineKind(StrEnum):
    MACHINERY = "machinery"
    PACKML = "packml"


class MachineryItemState(StrEnum):
    """States of OPC 40001-1 ``MachineryItemState_StateMachineType`` (value = BrowseName of the State)."""

    NOT_AVAILABLE = "NotAvailable"
    OUT_OF_SERVICE = "OutOfService"
    NOT_EXECUTING = "NotExecuting"
    EXECUTING = "Executing"

    @property
    def number(self) -> int:
        """The ``StateNumber`` the Machinery NodeSet gives the State."""
        return _MACHINERY_NUMBERS[self]


_MACHINERY_NUMBERS = {
    MachineryItemState.NOT_AVAILABLE: 0,
    MachineryItemState.OUT_OF_SERVICE: 1,
    MachineryItemState.NOT_EXECUTING: 2,
    MachineryItemState.EXECUTING: 3,
}


class PackMLState(IntEnum):
    """PackML machine states, numbered as ISA-TR88.00.02 / OPC 30050 (the NodeSet's ``StateNumber``).

    ``UNDEFINED`` (0) is TR88's "undefined" state code; it has no State object in the NodeSet.
    """

    UNDEFINED = 0
    CLEARING = 1
    STOPPED = 2
    STARTING = 3
    IDLE = 4
    SUSPENDED = 5
    EXECUTE = 6
    STOPPING = 7
    ABORTING = 8
    ABORTED = 9
    HOLDING = 10
    HELD = 11
    UNHOLDING = 12
    SUSPENDING = 13
    UNSUSPENDING = 14
    RESETTING = 15
    COMPLETING = 16
    COMPLETE = 17

    @property
    def state_name(self) -> str:
        """BrowseName of the State object in the PackML NodeSet (``Execute``, ``Stopped``, ...)."""
        return self.name.title()


# OPC 30050 nests the PackML states: BaseStateMachine {Aborting, Aborted, Cleared}, Cleared holds the
# MachineState machine {Clearing, Stopping, Stopped, Running}, Running holds the ExecuteState machine.
PACKML_BASE_STATES = frozenset({PackMLState.ABORTING, PackMLState.ABORTED})
PACKML_MACHINE_STATES = frozenset({PackMLState.CLEARING, PackMLState.STOPPING, PackMLState.STOPPED})


def packml_hierarchy(state: PackMLState) -> tuple[str | None, str | None, str | None]:
    """(BaseStateMachine, MachineState, ExecuteState) current State names of a PackML state code."""
    if state is PackMLState.UNDEFINED:
        return None, None, None
    if state in PACKML_BASE_STATES:
        return state.state_name, None, None
    if state in PACKML_MACHINE_STATES:
        return "Cleared", state.state_name, None
    return "Cleared", "Running", state.state_name


def machinery_state_of(state: PackMLState) -> MachineryItemState:
    """The simulator's mapping of a PackML state onto the OPC 40001-1 MachineryItemState."""
    if state is PackMLState.EXECUTE:
        return MachineryItemState.EXECUTING
    if state is PackMLState.UNDEFINED:
        return MachineryItemState.NOT_AVAILABLE
    if state in (PackMLState.ABORTING, PackMLState.ABORTED, PackMLState.HOLDING, PackMLState.HELD):
        return MachineryItemState.OUT_OF_SERVICE
    return MachineryItemState.NOT_EXECUTING


def packml_state_of(state: MachineryItemState) -> PackMLState:
    """Inverse of :func:`machinery_state_of` for the four MachineryItemStates."""
    return {
        MachineryItemState.EXECUTING: PackMLState.EXECUTE,
        MachineryItemState.NOT_EXECUTING: PackMLState.IDLE,
        MachineryItemState.OUT_OF_SERVICE: PackMLState.HELD,
        MachineryItemState.NOT_AVAILABLE: PackMLState.UNDEFINED,
    }[state]


class StopReason(StrEnum):
    MAINT = "MAINT"
    NO_MATERIAL = "NO_MATERIAL"
    BREAKDOWN = "BREAKDOWN"


# reason -> (MachineryItemState of a machinery machine, PackML state of a packml machine);
# any other reason stops a machine to (NotExecuting, Stopped).
STOP_REASON_STATES: dict[str, tuple[MachineryItemState, PackMLState]] = {
    StopReason.MAINT: (MachineryItemState.OUT_OF_SERVICE, PackMLState.HELD),
    StopReason.BREAKDOWN: (MachineryItemState.OUT_OF_SERVICE, PackMLState.ABORTED),
    StopReason.NO_MATERIAL: (MachineryItemState.NOT_EXECUTING, PackMLState.SUSPENDED),
}
DEFAULT_STOP_STATES = (MachineryItemState.NOT_EXECUTING, PackMLState.STOPPED)


def parse_state(value: Any) -> MachineryItemState | PackMLState:
    """Accept a MachineryItemState name (``Executing``), a PackML name (``Execute``, ``HELD``) or code."""
    if isinstance(value, MachineryItemState | PackMLState):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return PackMLState(value)
        except ValueError:
            raise ValueError(f"unknown PackML state code {value}") from None
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            return parse_state(int(text))
        for ms in MachineryItemState:
            if text.lower() in (ms.value.lower(), ms.name.lower()):
                return ms
        for ps in PackMLState:
            if text.lower() == ps.name.lower():
                return ps
    raise ValueError(
        f"unknown state {value!r}: use one of {[s.value for s in MachineryItemState]} "
        f"or a PackML state name/code {[s.state_name for s in PackMLState]}"
    )


@dataclass(frozen=True)
class MachineSpec:
    """One simulated machine.

    ``id`` becomes the BrowseName and the prefix of every string NodeId (``M01.GoodCount``), so it is
    restricted to letters, digits, ``_`` and ``-``.
    """

    id: str
    name: str = ""
    work_center: str = ""
    kind: MachineKind = MachineKind.MACHINERY
    counter_max: int = UINT32_MAX
    nominal_cycle_time_ms: float = 1000.0
    ambient_temperature: float = 35.0
    manufacturer: str = "plantbridge simulated equipment"
    serial_number: str = ""

    def __post_init__(self) -> None:
        if not _ID_RE.match(self.id):
            raise ValueError(f"machine id {self.id!r}: use 1-64 letters, digits, '_' or '-'")
        object.__setattr__(self, "kind", MachineKind(self.kind))
        if not self.name:
            object.__setattr__(self, "name", self.id)
        if not self.work_center:
            object.__setattr__(self, "work_center", self.id)
        if not self.serial_number:
            object.__setattr__(self, "serial_number", f"SIM-{self.id}")
        if not 0 < self.counter_max <= UINT32_MAX:
            raise ValueError(f"counter_max must be in 1..{UINT32_MAX}, got {self.counter_max}")
        if self.nominal_cycle_time_ms <= 0:
            raise ValueError("nominal_cycle_time_ms must be > 0")

    @classmethod
    def parse(cls, text: str) -> MachineSpec:
        """``ID[:WORK_CENTER[:KIND[:NAME]]]``, e.g. ``M01:ASSY-01:machinery`` or ``M02:PACK-01:packml``."""
        parts = [p.strip() for p in text.strip().split(":", 3)]
        if not parts[0]:
            raise ValueError(f"empty machine id in {text!r}")
        work_center = parts[1] if len(parts) > 1 else ""
        kind = MachineKind(parts[2].lower()) if len(parts) > 2 and parts[2] else MachineKind.MACHINERY
        name = parts[3] if len(parts) > 3 else ""
        return cls(id=parts[0], name=name, work_center=work_center, kind=kind)


def parse_machines(text: str) -> list[MachineSpec]:
    """Comma-separated :meth:`MachineSpec.parse` items; ids must be unique."""
    specs = [MachineSpec.parse(item) for item in text.split(",") if item.strip()]
    check_unique(specs)
    return specs


def check_unique(specs: list[MachineSpec]) -> None:
    seen: set[str] = set()
    for spec in specs:
        if spec.id in seen:
            raise ValueError(f"duplicate machine id {spec.id}")
        seen.add(spec.id)


def generate_specs(
    count: int,
    *,
    prefix: str = "M",
    work_center_prefix: str = "WC-",
    packml_every: int = 0,
    nominal_cycle_time_ms: float = 1000.0,
) -> list[MachineSpec]:
    """``count`` machines ``M001``.. (``M01``.. below 100); every ``packml_every``-th one is ``packml``."""
    if count < 1:
        raise ValueError("count must be >= 1")
    width = max(2, len(str(count)))
    specs = []
    for i in range(1, count + 1):
        number = str(i).zfill(width)
        kind = MachineKind.PACKML if packml_every and i % packml_every == 0 else MachineKind.MACHINERY
        specs.append(
            MachineSpec(
                id=f"{prefix}{number}",
                name=f"Simulated machine {number}",
                work_center=f"{work_center_prefix}{number}",
                kind=kind,
                nominal_cycle_time_ms=nominal_cycle_time_ms,
            )
        )
    return specs


DEFAULT_MACHINES: tuple[MachineSpec, ...] = (
    MachineSpec("M01", "Assembly cell 1", "ASSY-01", MachineKind.MACHINERY),
    MachineSpec("M02", "Packaging line 1", "PACK-01", MachineKind.PACKML),
)


@dataclass
class MachineStatus:
    """The current values of one machine, the source of truth the OPC UA nodes mirror."""

    spec: MachineSpec
    machinery_state: MachineryItemState = MachineryItemState.NOT_EXECUTING
    packml_state: PackMLState = PackMLState.IDLE
    good: int = 0
    scrap: int = 0
    stop_reason: str = ""
    order: str = ""
    operation: str = ""
    cycle_time_ms: float = 0.0
    temperature: float = 0.0
    last_transition: tuple[MachineryItemState, MachineryItemState] | None = None
    last_transition_time: datetime | None = None
    held_by_script: bool = False  # stopped by the scripting API: auto mode leaves it stopped

    def __post_init__(self) -> None:
        if not self.temperature:
            self.temperature = self.spec.ambient_temperature

    def wrap(self, value: int) -> int:
        return value % (self.spec.counter_max + 1)

    def check_counter(self, value: int) -> int:
        if not 0 <= value <= self.spec.counter_max:
            raise ValueError(f"counter value {value} outside 0..{self.spec.counter_max}")
        return value

    def enter(self, state: MachineryItemState, when: datetime | None = None) -> bool:
        """Set the MachineryItemState; records the transition. False when nothing changed."""
        if state is self.machinery_state:
            return False
        self.last_transition = (self.machinery_state, state)
        self.last_transition_time = when or datetime.now(UTC)
        self.machinery_state = state
        return True

    def apply_state(self, state: MachineryItemState | PackMLState, when: datetime | None = None) -> None:
        """Enter a state; a packml machine takes PackML states (a MachineryItemState is mapped by
        :func:`packml_state_of`), a machinery machine MachineryItemStates (PackML mapped by
        :func:`machinery_state_of`). Entering Executing clears the stop reason."""
        if self.spec.kind is MachineKind.PACKML:
            packml = state if isinstance(state, PackMLState) else packml_state_of(state)
            self.packml_state = packml
            self.enter(machinery_state_of(packml), when)
        else:
            self.enter(state if isinstance(state, MachineryItemState) else machinery_state_of(state), when)
        if self.machinery_state is MachineryItemState.EXECUTING:
            self.stop_reason = ""
            if not self.cycle_time_ms:
                self.cycle_time_ms = self.spec.nominal_cycle_time_ms

    def run(self) -> None:
        self.apply_state(MachineryItemState.EXECUTING)

    def stop(self, reason: str, state: MachineryItemState | PackMLState | None = None) -> None:
        """Stop with a reason; the state comes from :data:`STOP_REASON_STATES` unless given."""
        machinery, packml = STOP_REASON_STATES.get(reason, DEFAULT_STOP_STATES)
        target = state if state is not None else packml if self.spec.kind is MachineKind.PACKML else machinery
        if target in (MachineryItemState.EXECUTING, PackMLState.EXECUTE):
            raise ValueError("a stop cannot enter the executing state")
        self.apply_state(target)
        self.stop_reason = reason

    def add_counts(self, good: int = 0, scrap: int = 0) -> None:
        if good < 0 or scrap < 0:
            raise ValueError("counts must be >= 0")
        self.good = self.wrap(self.good + good)
        self.scrap = self.wrap(self.scrap + scrap)

    def set_counts(self, good: int | None = None, scrap: int | None = None) -> None:
        if good is not None:
            self.good = self.check_counter(good)
        if scrap is not None:
            self.scrap = self.check_counter(scrap)

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.spec.id,
            "name": self.spec.name,
            "work_center": self.spec.work_center,
            "kind": self.spec.kind.value,
            "state": self.machinery_state.value,
            "good": self.good,
            "scrap": self.scrap,
            "counter_max": self.spec.counter_max,
            "stop_reason": self.stop_reason,
            "order": self.order,
            "operation": self.operation,
            "cycle_time_ms": self.cycle_time_ms,
            "temperature": round(self.temperature, 3),
            "last_transition": (
                f"From{self.last_transition[0].value}To{self.last_transition[1].value}"
                if self.last_transition
                else None
            ),
        }
        if self.spec.kind is MachineKind.PACKML:
            data["packml_state"] = int(self.packml_state)
            data["packml_state_name"] = self.packml_state.state_name
        return data
