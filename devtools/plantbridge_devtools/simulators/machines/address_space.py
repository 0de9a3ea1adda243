"""Builds the machines' nodes in an asyncua server and mirrors :class:`MachineStatus` values into them.

Every node of a machine has a string NodeId ``<machine id>.<path>`` in the simulator namespace
(``urn:plantbridge:machine-simulator``); :data:`MACHINE_NODES` and :data:`PACKML_NODES` list them by
logical name. The layout is documented in ``server.py``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from asyncua import ua
from asyncua.common.instantiate_util import instantiate
from asyncua.common.node import Node
from asyncua.common.session_interface import AbstractSession
from asyncua.server.server import Server
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.object_ids import ObjectIds

from .model import (
    MachineKind,
    MachineryItemState,
    MachineStatus,
    PackMLState,
    packml_hierarchy,
)
from .nodeset_loader import DI_URI, MACHINERY_URI, PACKML_URI

SIM_NAMESPACE_URI = "urn:plantbridge:machine-simulator"


def nid(identifier: int | str, namespace: int = 0) -> ua.NodeId:
    """``ua.NodeId`` from plain Python values (asyncua annotates them with its own int/str subclasses)."""
    return ua.NodeId(identifier, namespace)  # type: ignore[arg-type]


# Machinery NodeSet (ns=1 in its own file) numeric ids used here
_MACHINES_FOLDER = 1001
_MACHINE_IDENTIFICATION_TYPE = 1012
_MACHINERY_ITEM_STATE_TYPE = 1002
# PackML NodeSet numeric ids
_PACKML_BASE_OBJECT_TYPE = 6
_PACKML_OBJECTS_FOLDER = 72
_PACKML_BASE_SM_TYPE = 3
_PACKML_MACHINE_SM_TYPE = 2
_PACKML_EXECUTE_SM_TYPE = 1

_STATE_TYPES = (ObjectIds.StateType, ObjectIds.InitialStateType)
_HAS_ADD_IN = nid(ObjectIds.HasAddIn)
_HAS_COMPONENT = nid(ObjectIds.HasComponent)
_ORGANIZES = nid(ObjectIds.Organizes)

# logical name -> NodeId string identifier suffix (after "<machine id>."); "" is the machine itself
MACHINE_NODES: dict[str, str] = {
    "Machine": "",
    "WorkCenter": "WorkCenter",
    "Identification": "Identification",
    "Identification.Manufacturer": "Identification.Manufacturer",
    "Identification.SerialNumber": "Identification.SerialNumber",
    "Identification.ProductInstanceUri": "Identification.ProductInstanceUri",
    "Identification.Model": "Identification.Model",
    "Identification.Location": "Identification.Location",
    "MachineryBuildingBlocks": "MachineryBuildingBlocks",
    "MachineryItemState": "MachineryItemState",
    "MachineryItemState.CurrentState": "MachineryItemState.CurrentState",
    "MachineryItemState.CurrentState.Id": "MachineryItemState.CurrentState.Id",
    "MachineryItemState.CurrentState.Number": "MachineryItemState.CurrentState.Number",
    "MachineryItemState.LastTransition": "MachineryItemState.LastTransition",
    "MachineryItemState.LastTransition.Id": "MachineryItemState.LastTransition.Id",
    "MachineryItemState.LastTransition.Number": "MachineryItemState.LastTransition.Number",
    "MachineryItemState.LastTransition.TransitionTime": "MachineryItemState.LastTransition.TransitionTime",
    "GoodCount": "GoodCount",
    "ScrapCount": "ScrapCount",
    "StopReason": "StopReason",
    "CurrentOrder": "CurrentOrder",
    "CurrentOperation": "CurrentOperation",
    "CycleTimeMs": "CycleTimeMs",
    "Temperature": "Temperature",
}

_BASE_SM = "PackML.BaseStateMachine"
_MACHINE_SM = f"{_BASE_SM}.MachineState"
_EXECUTE_SM = f"{_MACHINE_SM}.ExecuteState"

# plain PackMLState variable, always there for packml machines
PACKML_STATE_NODES: dict[str, str] = {"PackMLState": "PackMLState"}
# standard OPC 30050 nodes, there when the PackML NodeSet loaded
PACKML_NODES: dict[str, str] = {
    "PackML": "PackML",
    "PackML.BaseStateMachine.CurrentState": f"{_BASE_SM}.CurrentState",
    "PackML.BaseStateMachine.CurrentState.Id": f"{_BASE_SM}.CurrentState.Id",
    "PackML.MachineState.CurrentState": f"{_MACHINE_SM}.CurrentState",
    "PackML.MachineState.CurrentState.Id": f"{_MACHINE_SM}.CurrentState.Id",
    "PackML.ExecuteState.CurrentState": f"{_EXECUTE_SM}.CurrentState",
    "PackML.ExecuteState.CurrentState.Id": f"{_EXECUTE_SM}.CurrentState.Id",
    "PackML.Status.UnitModeCurrent": "PackML.Status.UnitModeCurrent",
    "PackML.Status.MachSpeed": "PackML.Status.MachSpeed",
    "PackML.Status.CurMachSpeed": "PackML.Status.CurMachSpeed",
    "PackML.Status.EquipmentStarved": "PackML.Status.EquipmentStarved",
    "PackML.Status.EquipmentBlocked": "PackML.Status.EquipmentBlocked",
}

_PROCESS_VARIABLES: tuple[tuple[str, ua.VariantType], ...] = (
    ("GoodCount", ua.VariantType.UInt32),
    ("ScrapCount", ua.VariantType.UInt32),
    ("StopReason", ua.VariantType.String),
    ("CurrentOrder", ua.VariantType.String),
    ("CurrentOperation", ua.VariantType.String),
    ("CycleTimeMs", ua.VariantType.Double),
    ("Temperature", ua.VariantType.Double),
)


def node_identifiers(machine_id: str, kind: MachineKind, *, packml_nodeset: bool = True) -> dict[str, str]:
    """Logical name -> string identifier of every node the simulator creates for a machine."""
    names = dict(MACHINE_NODES)
    if kind is MachineKind.PACKML:
        names |= PACKML_STATE_NODES
        if packml_nodeset:
            names |= PACKML_NODES
    return {logical: f"{machine_id}.{suffix}" if suffix else machine_id for logical, suffix in names.items()}


@dataclass
class StateObject:
    node_id: ua.NodeId
    number: int


@dataclass
class StateTables:
    """State and transition objects of the state machine types, read from the loaded NodeSets."""

    machinery_states: dict[str, StateObject] = field(default_factory=dict)
    machinery_transitions: dict[str, StateObject] = field(default_factory=dict)
    packml_states: dict[str, StateObject] = field(default_factory=dict)  # all three PackML levels


async def _read_state_objects(type_node: Node) -> tuple[dict[str, StateObject], dict[str, StateObject]]:
    states: dict[str, StateObject] = {}
    transitions: dict[str, StateObject] = {}
    for child in await type_node.get_children(refs=ObjectIds.HasComponent):
        type_definition = await child.read_type_definition()
        if type_definition is None or type_definition.NamespaceIndex != 0:
            continue
        kind = type_definition.Identifier
        if kind not in (*_STATE_TYPES, ObjectIds.TransitionType):
            continue
        name = (await child.read_browse_name()).Name
        is_state = kind in _STATE_TYPES
        number_node = await child.get_child("0:StateNumber" if is_state else "0:TransitionNumber")
        number = await number_node.read_value()  # PackML's TransitionNumbers carry no value
        entry = StateObject(child.nodeid, int(number) if number is not None else -1)
        (states if is_state else transitions)[name] = entry
    return states, transitions


@dataclass
class MachineNodes:
    """NodeIds of one machine plus the last values written, so only changes reach the subscribers."""

    ids: dict[str, ua.NodeId]
    written: dict[str, ua.Variant] = field(default_factory=dict)


class AddressSpace:
    """The machines' part of one asyncua server's address space."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.ns = 0
        self.ns_machinery = 0
        self.ns_di = 0
        self.ns_packml: int | None = None
        self.tables = StateTables()
        self.machines: dict[str, MachineNodes] = {}
        self._templates: dict[str, tuple[str, list[ua.AddNodesItem]]] = {}

    async def setup(self, *, packml_loaded: bool) -> None:
        self.ns = await self.server.register_namespace(SIM_NAMESPACE_URI)
        self.ns_machinery = await self.server.get_namespace_index(MACHINERY_URI)
        self.ns_di = await self.server.get_namespace_index(DI_URI)
        state_type = self.server.get_node(nid(_MACHINERY_ITEM_STATE_TYPE, self.ns_machinery))
        states, transitions = await _read_state_objects(state_type)
        self.tables.machinery_states, self.tables.machinery_transitions = states, transitions
        missing = {s.value for s in MachineryItemState} - states.keys()
        if missing:
            raise RuntimeError(f"MachineryItemState_StateMachineType lacks states {sorted(missing)}")
        if packml_loaded:
            self.ns_packml = await self.server.get_namespace_index(PACKML_URI)
            for type_id in (_PACKML_BASE_SM_TYPE, _PACKML_MACHINE_SM_TYPE, _PACKML_EXECUTE_SM_TYPE):
                pstates, _ = await _read_state_objects(self.server.get_node(nid(type_id, self.ns_packml)))
                self.tables.packml_states |= pstates

    def _id(self, machine_id: str, suffix: str) -> ua.NodeId:
        return nid(f"{machine_id}.{suffix}" if suffix else machine_id, self.ns)

    async def add_machine(self, status: MachineStatus) -> MachineNodes:
        spec = status.spec
        mid = spec.id
        ns, mns, dins = self.ns, self.ns_machinery, self.ns_di
        folder = self.server.get_node(nid(_MACHINES_FOLDER, mns))
        machine = await folder.add_object(self._id(mid, ""), ua.QualifiedName(mid, ns))
        await machine.write_attribute(
            AttributeIds.DisplayName, ua.DataValue(ua.Variant(ua.LocalizedText(spec.name, "en")))
        )
        await machine.add_property(
            self._id(mid, "WorkCenter"), ua.QualifiedName("WorkCenter", ns), spec.work_center, ua.VariantType.String
        )

        # OPC 40001-1: Identification (MachineIdentificationType) as AddIn of the machine
        ident_type = self.server.get_node(nid(_MACHINE_IDENTIFICATION_TYPE, mns))
        ident = await self._instantiate(
            mid, machine, ident_type, "Identification", ua.QualifiedName("Identification", dins), optional=False
        )
        await _retarget(machine, ident, _HAS_COMPONENT, _HAS_ADD_IN)
        await ident.add_property(
            self._id(mid, "Identification.Model"),
            ua.QualifiedName("Model", dins),
            ua.LocalizedText(spec.name, "en"),
            ua.VariantType.LocalizedText,
        )
        await ident.add_property(
            self._id(mid, "Identification.Location"),
            ua.QualifiedName("Location", mns),
            spec.work_center,
            ua.VariantType.String,
        )
        values = {
            "Identification.Manufacturer": ua.Variant(ua.LocalizedText(spec.manufacturer, "en")),
            "Identification.SerialNumber": ua.Variant(spec.serial_number, ua.VariantType.String),
            "Identification.ProductInstanceUri": ua.Variant(
                f"{SIM_NAMESPACE_URI}:{mid}:{spec.serial_number}", ua.VariantType.String
            ),
        }

        # MachineryBuildingBlocks folder with the AddIns; MachineryItemState state machine in it
        blocks = await machine.add_folder(
            self._id(mid, "MachineryBuildingBlocks"), ua.QualifiedName("MachineryBuildingBlocks", mns)
        )
        await blocks.add_reference(ident.nodeid, _HAS_ADD_IN)
        sm_type = self.server.get_node(nid(_MACHINERY_ITEM_STATE_TYPE, mns))
        state_machine = await self._instantiate(
            mid, blocks, sm_type, "MachineryItemState", ua.QualifiedName("MachineryItemState", mns), optional=True
        )
        await _retarget(blocks, state_machine, _ORGANIZES, _HAS_ADD_IN)
        await self._add_state_properties(mid)
        await self._write_available(
            mid,
            "MachineryItemState",
            self.tables.machinery_states.values(),
            self.tables.machinery_transitions.values(),
        )

        for name, vtype in _PROCESS_VARIABLES:
            await machine.add_variable(self._id(mid, name), ua.QualifiedName(name, ns), _default(vtype), vtype)

        packml_nodeset = self.ns_packml is not None
        if spec.kind is MachineKind.PACKML:
            await machine.add_variable(
                self._id(mid, "PackMLState"), ua.QualifiedName("PackMLState", ns), 0, ua.VariantType.Int32
            )
            if packml_nodeset:
                await self._add_packml(machine, mid)

        ids = {
            logical: nid(identifier, ns)
            for logical, identifier in node_identifiers(mid, spec.kind, packml_nodeset=packml_nodeset).items()
        }
        nodes = MachineNodes(ids)
        self.machines[mid] = nodes
        await self._write(nodes, values)
        await self.sync(status)
        return nodes

    async def _instantiate(
        self, mid: str, parent: Node, type_node: Node, suffix: str, bname: ua.QualifiedName, *, optional: bool
    ) -> Node:
        """asyncua's ``instantiate`` for the first machine; for the others a replay of the AddNodes items
        it produced, with the NodeIds renamed (instantiate browses the type hierarchy each time: ~10 ms
        per call, most of the build time of 100 machines)."""
        key = f"{type_node.nodeid.to_string()}|{suffix}|{optional}"
        template = self._templates.get(key)
        if template is None:
            recorder = _RecordingSession(self.server.iserver.isession)
            session = cast(AbstractSession, recorder)
            await instantiate(
                Node(session, parent.nodeid),
                Node(session, type_node.nodeid),
                nodeid=self._id(mid, suffix),
                bname=bname,
                dname=ua.LocalizedText(bname.Name),
                instantiate_optional=optional,
            )
            self._templates[key] = (mid, recorder.items)
        else:
            template_mid, items = template
            replay = copy.deepcopy(items)
            for item in replay:
                item.RequestedNewNodeId = self._rename(item.RequestedNewNodeId, template_mid, mid)
                item.ParentNodeId = self._rename(item.ParentNodeId, template_mid, mid)
            for result in await self.server.iserver.isession.add_nodes(replay):
                result.StatusCode.check()
        return self.server.get_node(self._id(mid, suffix))

    def _rename(self, node_id: ua.NodeId, old: str, new: str) -> ua.NodeId:
        identifier = node_id.Identifier
        if node_id.NamespaceIndex != self.ns or not isinstance(identifier, str):
            return node_id
        if identifier == old or identifier.startswith(f"{old}."):
            return nid(new + identifier[len(old) :], self.ns)
        return node_id

    async def _add_state_properties(self, mid: str) -> None:
        for suffix, name, value, vtype in (
            ("MachineryItemState.CurrentState.Number", "Number", 0, ua.VariantType.UInt32),
            ("MachineryItemState.LastTransition.Number", "Number", 0, ua.VariantType.UInt32),
            ("MachineryItemState.LastTransition.TransitionTime", "TransitionTime", None, ua.VariantType.DateTime),
        ):
            parent = self.server.get_node(self._id(mid, suffix.rsplit(".", 1)[0]))
            await parent.add_property(self._id(mid, suffix), ua.QualifiedName(name, 0), value, vtype)

    async def _write_available(
        self,
        mid: str,
        prefix: str,
        states: Iterable[StateObject],
        transitions: Iterable[StateObject] | None = None,
    ) -> None:
        for name, entries in (("AvailableStates", states), ("AvailableTransitions", transitions)):
            if entries is None:
                continue
            node_ids = [entry.node_id for entry in entries]
            await self.server.write_attribute_value(
                self._id(mid, f"{prefix}.{name}"),
                ua.DataValue(ua.Variant(node_ids, ua.VariantType.NodeId)),
            )

    async def _add_packml(self, machine: Node, mid: str) -> None:
        assert self.ns_packml is not None
        pns = self.ns_packml
        base_type = self.server.get_node(nid(_PACKML_BASE_OBJECT_TYPE, pns))
        packml = await self._instantiate(
            mid, machine, base_type, "PackML", ua.QualifiedName("PackML", self.ns), optional=False
        )
        packml_objects = self.server.get_node(nid(_PACKML_OBJECTS_FOLDER, pns))
        await packml_objects.add_reference(packml.nodeid, _ORGANIZES)
        by_level = [
            (_BASE_SM, {"Aborting", "Aborted", "Cleared"}),
            (_MACHINE_SM, {"Clearing", "Stopping", "Stopped", "Running"}),
            (_EXECUTE_SM, None),
        ]
        taken: set[str] = set()
        for prefix, names in by_level:
            wanted = names if names is not None else set(self.tables.packml_states) - taken
            taken |= wanted
            entries = [s for n, s in self.tables.packml_states.items() if n in wanted]
            await self._write_available(mid, prefix, entries)

    async def sync(self, status: MachineStatus) -> int:
        """Write the values of ``status`` that differ from the last written ones; returns how many."""
        nodes = self.machines.get(status.spec.id)
        if nodes is None:
            return 0
        return await self._write(nodes, self.values(status))

    def values(self, status: MachineStatus) -> dict[str, ua.Variant]:
        tables = self.tables
        state = status.machinery_state
        state_obj = tables.machinery_states[state.value]
        values: dict[str, ua.Variant] = {
            "GoodCount": ua.Variant(status.good, ua.VariantType.UInt32),
            "ScrapCount": ua.Variant(status.scrap, ua.VariantType.UInt32),
            "StopReason": ua.Variant(status.stop_reason, ua.VariantType.String),
            "CurrentOrder": ua.Variant(status.order, ua.VariantType.String),
            "CurrentOperation": ua.Variant(status.operation, ua.VariantType.String),
            "CycleTimeMs": ua.Variant(float(status.cycle_time_ms), ua.VariantType.Double),
            "Temperature": ua.Variant(round(float(status.temperature), 2), ua.VariantType.Double),
            "MachineryItemState.CurrentState": ua.Variant(ua.LocalizedText(state.value, "en")),
            "MachineryItemState.CurrentState.Id": ua.Variant(state_obj.node_id, ua.VariantType.NodeId),
            "MachineryItemState.CurrentState.Number": ua.Variant(state_obj.number, ua.VariantType.UInt32),
        }
        if status.last_transition is not None:
            name = f"From{status.last_transition[0].value}To{status.last_transition[1].value}"
            transition = tables.machinery_transitions.get(name)
            values["MachineryItemState.LastTransition"] = ua.Variant(ua.LocalizedText(name, "en"))
            if transition is not None:
                values["MachineryItemState.LastTransition.Id"] = ua.Variant(transition.node_id, ua.VariantType.NodeId)
                values["MachineryItemState.LastTransition.Number"] = ua.Variant(
                    transition.number, ua.VariantType.UInt32
                )
            if status.last_transition_time is not None:
                values["MachineryItemState.LastTransition.TransitionTime"] = ua.Variant(
                    status.last_transition_time, ua.VariantType.DateTime
                )
        if status.spec.kind is MachineKind.PACKML:
            values["PackMLState"] = ua.Variant(int(status.packml_state), ua.VariantType.Int32)
            if self.ns_packml is not None:
                self._packml_values(status, values)
        return values

    def _packml_values(self, status: MachineStatus, values: dict[str, ua.Variant]) -> None:
        levels = zip(
            ("PackML.BaseStateMachine", "PackML.MachineState", "PackML.ExecuteState"),
            packml_hierarchy(status.packml_state),
            strict=True,
        )
        for logical, name in levels:
            entry = self.tables.packml_states.get(name) if name else None
            values[f"{logical}.CurrentState"] = ua.Variant(ua.LocalizedText(name, "en" if name else None))
            values[f"{logical}.CurrentState.Id"] = ua.Variant(
                entry.node_id if entry else ua.NodeId(), ua.VariantType.NodeId
            )
        nominal_ppm = 60000.0 / status.spec.nominal_cycle_time_ms
        executing = status.packml_state is PackMLState.EXECUTE
        current_ppm = 60000.0 / status.cycle_time_ms if executing and status.cycle_time_ms > 0 else 0.0
        values["PackML.Status.UnitModeCurrent"] = ua.Variant(1, ua.VariantType.Int32)  # Produce
        values["PackML.Status.MachSpeed"] = ua.Variant(round(nominal_ppm, 3), ua.VariantType.Float)
        values["PackML.Status.CurMachSpeed"] = ua.Variant(round(current_ppm, 3), ua.VariantType.Float)
        values["PackML.Status.EquipmentStarved"] = ua.Variant(
            status.packml_state is PackMLState.SUSPENDED, ua.VariantType.Boolean
        )
        values["PackML.Status.EquipmentBlocked"] = ua.Variant(False, ua.VariantType.Boolean)

    async def _write(self, nodes: MachineNodes, values: dict[str, ua.Variant]) -> int:
        now = datetime.now(UTC)
        aspace = self.server.iserver.aspace
        count = 0
        for logical, variant in values.items():
            if nodes.written.get(logical) == variant:
                continue
            node_id = nodes.ids[logical]
            result = await aspace.write_attribute_value(
                node_id,
                AttributeIds.Value,
                ua.DataValue(variant, SourceTimestamp=now, ServerTimestamp=now),  # type: ignore[arg-type]
            )
            result.check()  # raises UaStatusCodeError, e.g. BadTypeMismatch
            nodes.written[logical] = variant
            count += 1
        return count


class _RecordingSession:
    """Wraps the server's internal session and keeps a copy of every AddNodes item sent through it."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.items: list[ua.AddNodesItem] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def add_nodes(self, items: list[ua.AddNodesItem]) -> list[ua.AddNodesResult]:
        self.items.extend(copy.deepcopy(items))
        results: list[ua.AddNodesResult] = await self._inner.add_nodes(items)
        return results


def _default(vtype: ua.VariantType) -> object:
    return {ua.VariantType.String: "", ua.VariantType.Double: 0.0}.get(vtype, 0)


async def _retarget(parent: Node, child: Node, old: ua.NodeId, new: ua.NodeId) -> None:
    """Replace the ``old`` reference from parent to child by ``new`` (asyncua instantiates with
    HasComponent/Organizes; OPC 40001-1 attaches building blocks with HasAddIn)."""
    await parent.delete_reference(child.nodeid, old, forward=True, bidirectional=True)
    await parent.add_reference(child.nodeid, new, forward=True, bidirectional=True)
