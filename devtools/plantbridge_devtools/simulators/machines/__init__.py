"""OPC UA machine simulator: an asyncua server with scriptable Machinery / PackML machines.

It plays foreign equipment for the edge agent and imports nothing of plantbridge outside this
folder. See ``server.py`` for the node map and ``control.py`` for the HTTP control API.
"""

from .model import (
    MachineKind,
    MachineryItemState,
    MachineSpec,
    PackMLState,
    StopReason,
    generate_specs,
    parse_machines,
)
from .server import DEFAULT_ENDPOINT, SIM_NAMESPACE_URI, MachineSimulator, UnknownMachineError

__all__ = [
    "DEFAULT_ENDPOINT",
    "SIM_NAMESPACE_URI",
    "MachineKind",
    "MachineSimulator",
    "MachineSpec",
    "MachineryItemState",
    "PackMLState",
    "StopReason",
    "UnknownMachineError",
    "generate_specs",
    "parse_machines",
]
