"""The edge agent as a Sparkplug B host application: births, aliases, sequence numbers, deaths.

Pure logic (no I/O): :meth:`SparkplugHost.handle` takes one MQTT message (topic, payload, arrival
time) and returns the machine role changes it carries plus the edge nodes to ask for a rebirth.
Payloads and topics are decoded by ``pysparkplug`` (the Sparkplug B protobuf schema is not copied).

* NBIRTH/DBIRTH: the metric names, aliases and data types of the node/device, and their current
  values (changes like any other); ``bdSeq`` of the NBIRTH identifies the node's session.
* NDATA/DDATA: metrics by alias (or name), decoded against the birth.
* NDEATH (with the bdSeq of the current birth; a stale one is ignored) and DDEATH: every machine of
  that node/device gets ``state = 0`` (Machinery StateNumber NotAvailable, PackML Undefined), i.e.
  the canonical ``unavailable``, so its downtime starts like any other.
* ``seq`` must rise by one (mod 256) across all messages of an edge node; a gap, data before its
  birth or an unknown alias asks the node to rebirth (NCMD ``Node Control/Rebirth``). The data that
  came anyway is still used: counters are absolute, the rebirth restates every current value.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pysparkplug as spb

from plantbridge.edge.config import MachineConfig
from plantbridge.edge.machine import Change
from plantbridge.edge.mqtt_config import SparkplugSource

_log = logging.getLogger(__name__)

NAMESPACE = "spBv1.0"
REBIRTH_METRIC = "Node Control/Rebirth"
UNAVAILABLE = 0  # Machinery StateNumber NotAvailable / PackML Undefined -> EquipmentState.UNAVAILABLE
REBIRTH_AGAIN_S = 5.0  # do not ask the same node again sooner (it may be rebirthing already)

NodeKey = tuple[str, str]  # (group, edge node)


@dataclass
class _Node:
    bd_seq: int | None = None
    seq: int | None = None
    births: dict[str | None, Any] = field(default_factory=dict)  # device (None: the node) -> birth
    rebirth_asked: float | None = None  # monotonic time of the last request
    dead_bd_seq: int | None = None  # the session whose NDEATH was applied (a redelivered copy is ignored)


@dataclass
class HostStats:
    births: int = 0
    deaths: int = 0
    stale_deaths: int = 0
    seq_gaps: int = 0
    rebirths_requested: int = 0
    undecodable: int = 0


class SparkplugHost:
    def __init__(self, machines: list[MachineConfig]) -> None:
        # (group, node, device) -> [(machine id, metric name -> roles)]
        self._targets: dict[tuple[str, str, str | None], list[tuple[str, dict[str, list[str]]]]] = {}
        for machine in machines:
            src = machine.mqtt
            if not isinstance(src, SparkplugSource):
                continue
            names: dict[str, list[str]] = {}
            for role, metric in src.metrics.items():
                names.setdefault(metric.replace("{id}", machine.id), []).append(role)
            for name, metric in src.telemetry.items():
                names.setdefault(metric.replace("{id}", machine.id), []).append(f"extra:{name}")
            device = src.device.replace("{id}", machine.id) if src.device else None
            self._targets.setdefault((src.group, src.edge_node, device), []).append((machine.id, names))
        self.nodes: dict[NodeKey, _Node] = {(g, n): _Node() for g, n, _ in self._targets}
        self.stats = HostStats()

    def subscriptions(self) -> list[str]:
        """The node's own messages and its devices' messages, of every edge node a machine is on."""
        topics = []
        for group, node in self.nodes:
            topics += [f"{NAMESPACE}/{group}/+/{node}", f"{NAMESPACE}/{group}/+/{node}/+"]
        return topics

    def without_birth(self) -> list[NodeKey]:
        return [key for key, node in self.nodes.items() if None not in node.births]

    def handle(self, topic: str, payload: bytes, now: datetime, now_mono: float) -> tuple[list[Change], list[NodeKey]]:
        try:
            t = spb.Topic.from_str(topic)
        except Exception:  # not a Sparkplug topic
            return [], []
        key = (t.group_id or "", t.edge_node_id or "")
        node = self.nodes.get(key)
        if node is None:
            return [], []
        kind, device = t.message_type, t.device_id or None
        if not isinstance(kind, spb.MessageType):
            return [], []
        rebirth: list[NodeKey] = []
        try:
            if kind is spb.MessageType.NBIRTH:
                return self._nbirth(key, node, payload, now), []
            if kind is spb.MessageType.NDEATH:
                return self._ndeath(key, node, payload, now), []
            if kind not in (spb.MessageType.DBIRTH, spb.MessageType.NDATA, spb.MessageType.DDATA,
                            spb.MessageType.DDEATH):
                return [], []  # NCMD/DCMD/STATE: not ours to read
            birth = node.births.get(None if kind is spb.MessageType.NDATA else device)
            if None not in node.births or (kind in (spb.MessageType.NDATA, spb.MessageType.DDATA) and birth is None):
                rebirth.append(key)  # data of a node or device whose birth we have not seen
            decoded = _decode(kind, payload, birth if kind in (spb.MessageType.NDATA, spb.MessageType.DDATA) else None)
        except Exception as err:  # an unknown alias, a broken payload
            self.stats.undecodable += 1
            _log.warning("sparkplug %s: cannot decode (%s); asking for a rebirth", topic, err)
            return [], self._ask(key, node, now_mono)
        if self._seq_gap(node, decoded):
            rebirth.append(key)
        if kind is spb.MessageType.DBIRTH:
            node.births[device] = decoded
            self.stats.births += 1
        elif kind is spb.MessageType.DDEATH:
            node.births.pop(device, None)
            self.stats.deaths += 1
            return self._unavailable(key, device, _ts(decoded.timestamp, now)), self._ask_all(rebirth, node, now_mono)
        return self._changes(key, device, decoded, now), self._ask_all(rebirth, node, now_mono)

    def rebirth_request(self, key: NodeKey, now_ms: int) -> tuple[str, bytes]:
        """(topic, payload) of the NCMD asking the edge node to publish its births again."""
        group, node = key
        metric = spb.Metric(timestamp=now_ms, name=REBIRTH_METRIC, datatype=spb.DataType.BOOLEAN, value=True)
        self.stats.rebirths_requested += 1
        command = spb.NCmd(timestamp=now_ms, metrics=(metric,))
        return f"{NAMESPACE}/{group}/NCMD/{node}", command.encode(include_dtypes=True)

    # ------------------------------------------------------------------ messages

    def _nbirth(self, key: NodeKey, node: _Node, payload: bytes, now: datetime) -> list[Change]:
        birth = spb.NBirth.decode(payload)
        bd_seq = next((m.value for m in birth.metrics if m.name == "bdSeq"), None)
        node.bd_seq = int(bd_seq) if isinstance(bd_seq, int) else None
        node.seq = birth.seq
        node.births = {None: birth}
        node.rebirth_asked = None
        node.dead_bd_seq = None
        self.stats.births += 1
        return self._changes(key, None, birth, now)

    def _ndeath(self, key: NodeKey, node: _Node, payload: bytes, now: datetime) -> list[Change]:
        death = spb.NDeath.decode(payload)
        bd_seq = death.bd_seq_metric.value
        stale = node.bd_seq is not None and isinstance(bd_seq, int) and bd_seq != node.bd_seq
        if stale or (isinstance(bd_seq, int) and bd_seq == node.dead_bd_seq):
            self.stats.stale_deaths += 1  # the will of an earlier session published late, or a redelivery
            return []
        node.dead_bd_seq = bd_seq if isinstance(bd_seq, int) else None
        node.births = {}
        node.seq = None
        self.stats.deaths += 1
        # the will was registered at connect: its timestamp is not when the node died
        changes: list[Change] = []
        for (group, edge_node, device), _ in self._targets.items():
            if (group, edge_node) == key:
                changes += self._unavailable(key, device, now)
        return changes

    def _unavailable(self, key: NodeKey, device: str | None, ts: datetime) -> list[Change]:
        targets = self._targets.get((*key, device), [])
        return [Change(machine_id, "state", UNAVAILABLE, ts) for machine_id, _ in targets]

    def _changes(self, key: NodeKey, device: str | None, payload: Any, now: datetime) -> list[Change]:
        targets = self._targets.get((*key, device))
        if not targets:
            return []
        default_ts = _ts(getattr(payload, "timestamp", None), now)
        changes = []
        for metric in payload.metrics:
            if metric.name is None:
                continue
            value = None if metric.is_null else metric.value
            ts = _ts(metric.timestamp, default_ts) if metric.timestamp is not None else default_ts
            for machine_id, names in targets:
                for role in names.get(metric.name, ()):
                    changes.append(Change(machine_id, role, value, ts))
        return changes

    def _seq_gap(self, node: _Node, decoded: Any) -> bool:
        seq = getattr(decoded, "seq", None)
        if seq is None:
            return False
        expected = None if node.seq is None else (node.seq + 1) % 256
        node.seq = int(seq)
        if expected is not None and seq != expected:
            self.stats.seq_gaps += 1
            _log.warning("sparkplug: seq %s where %s was expected: messages were lost", seq, expected)
            return True
        return False

    def _ask_all(self, keys: list[NodeKey], node: _Node, now_mono: float) -> list[NodeKey]:
        return self._ask(keys[0], node, now_mono) if keys else []

    def _ask(self, key: NodeKey, node: _Node, now_mono: float) -> list[NodeKey]:
        if node.rebirth_asked is not None and now_mono - node.rebirth_asked < REBIRTH_AGAIN_S:
            return []
        node.rebirth_asked = now_mono
        return [key]


def _decode(kind: spb.MessageType, payload: bytes, birth: Any) -> Any:
    cls: Any = {
        spb.MessageType.DBIRTH: spb.DBirth,
        spb.MessageType.NDATA: spb.NData,
        spb.MessageType.DDATA: spb.DData,
        spb.MessageType.DDEATH: spb.DDeath,
    }[kind]
    if birth is None and kind in (spb.MessageType.NDATA, spb.MessageType.DDATA):
        decoded = cls.decode(payload)
        if any(m.name is None for m in decoded.metrics):
            raise KeyError("metrics by alias before the birth that defines the aliases")
        return decoded
    return cls.decode(payload, birth=birth)


def _ts(ms: int | None, default: datetime) -> datetime:
    if ms is None or ms <= 0:
        return default
    return datetime.fromtimestamp(ms / 1000, UTC)
