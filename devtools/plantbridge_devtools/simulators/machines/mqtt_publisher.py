"""Machines that publish to an MQTT broker, scripted like the OPC UA simulator (``server.py``).

The same machine model (:class:`~.model.MachineStatus`) and the same scripting methods (``run``,
``stop_machine``, ``set_state``, ``count``, ``set_counter``, ``reset_counters``, ``set_order``,
``set_temperature``); only the way the values leave differs. Imports nothing of plantbridge.

``mode="json"``: every change publishes the machine's whole status, retained, QoS 1, on
``{prefix}/{id}``::

    {"ts": "2025-01-01T10:00:00.123+00:00", "state": "Executing", "state_number": 3,
     "packml_state": 6 (packml machines), "good": 42, "scrap": 1, "stop_reason": "", "order": "1000123",
     "operation": "0010", "cycle_time_ms": 1000.0, "temperature": 35.0}

``mode="sparkplug"``: a Sparkplug B edge node ``{edge_node}`` in group ``{group}`` with one device per
machine (device id = machine id). NBIRTH carries ``bdSeq`` and ``Node Control/Rebirth``; each DBIRTH
the device's metrics with names, aliases and types; DDATA only the changed metrics, by alias. ``seq``
runs 0..255 over all messages of the node; the NDEATH (with the session's bdSeq) is the MQTT will. An
NCMD ``Node Control/Rebirth`` makes it publish the births again. Device metrics::

    Machine/State        UInt32   MachineryItemState StateNumber (0 NotAvailable .. 3 Executing)
    PackML/State         Int32    PackML state code (packml machines only)
    Machine/StopReason   String
    Counters/Good        UInt32   wraps after the spec's counter_max
    Counters/Scrap       UInt32
    Job/Order            String
    Job/Operation        String
    Process/CycleTimeMs  Double
    Process/Temperature  Double

The model is the source of truth (like a PLC): while the broker is away, scripting goes on and the
reconnect restates every machine (births, or a retained status per machine).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Literal

import aiomqtt
import pysparkplug as spb

from .model import (
    DEFAULT_MACHINES,
    MachineKind,
    MachineSpec,
    MachineStatus,
    check_unique,
)
from .scripting import MachineScripting

_log = logging.getLogger(__name__)

Mode = Literal["json", "sparkplug"]
DT = spb.DataType
METRICS: tuple[tuple[str, spb.DataType], ...] = (
    ("Machine/State", DT.UINT32),
    ("PackML/State", DT.INT32),
    ("Machine/StopReason", DT.STRING),
    ("Counters/Good", DT.UINT32),
    ("Counters/Scrap", DT.UINT32),
    ("Job/Order", DT.STRING),
    ("Job/Operation", DT.STRING),
    ("Process/CycleTimeMs", DT.DOUBLE),
    ("Process/Temperature", DT.DOUBLE),
)


def metric_values(status: MachineStatus) -> dict[str, Any]:
    values: dict[str, Any] = {
        "Machine/State": status.machinery_state.number,
        "Machine/StopReason": status.stop_reason,
        "Counters/Good": status.good,
        "Counters/Scrap": status.scrap,
        "Job/Order": status.order,
        "Job/Operation": status.operation,
        "Process/CycleTimeMs": float(status.cycle_time_ms),
        "Process/Temperature": float(round(status.temperature, 3)),
    }
    if status.spec.kind is MachineKind.PACKML:
        values["PackML/State"] = int(status.packml_state)
    return values


def json_status(status: MachineStatus) -> dict[str, Any]:
    data: dict[str, Any] = {
        "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "state": status.machinery_state.value,
        "state_number": status.machinery_state.number,
        "good": status.good,
        "scrap": status.scrap,
        "stop_reason": status.stop_reason,
        "order": status.order,
        "operation": status.operation,
        "cycle_time_ms": status.cycle_time_ms,
        "temperature": round(status.temperature, 3),
    }
    if status.spec.kind is MachineKind.PACKML:
        data["packml_state"] = int(status.packml_state)
    return data


class MqttMachinePublisher(MachineScripting):
    """Scripted machines on an MQTT broker (plain JSON or Sparkplug B); ``start()``/``stop()``."""

    def __init__(
        self,
        machines: Iterable[MachineSpec] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 1883,
        mode: Mode = "sparkplug",
        prefix: str = "plantbridge/machines",
        group: str = "plantbridge",
        edge_node: str = "machines",
        reconnect_s: float = 0.3,
    ) -> None:
        if mode not in ("json", "sparkplug"):
            raise ValueError(f"mode must be 'json' or 'sparkplug', got {mode!r}")
        specs = list(machines) if machines is not None else list(DEFAULT_MACHINES)
        check_unique(specs)
        self.host, self.port, self.mode = host, port, mode
        self.prefix, self.group, self.edge_node = prefix.rstrip("/"), group, edge_node
        self.reconnect_s = reconnect_s
        self._statuses = {s.id: MachineStatus(s) for s in specs}
        self._sent: dict[str, dict[str, Any]] = {}  # machine -> metric values last published
        self._aliases = {name: i + 1 for i, (name, _) in enumerate(METRICS)}
        self._types = dict(METRICS)
        self.bd_seq = -1
        self._seq = 0
        self._client: aiomqtt.Client | None = None
        self._connected = asyncio.Event()
        self._want_online = True
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.published = 0
        self.rebirths = 0

    # ---------------------------------------------------------------- lifecycle

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def start(self, *, wait: bool = True) -> None:
        self._want_online = True
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="mqtt-machine-publisher")
        if wait:
            await asyncio.wait_for(self._connected.wait(), timeout=15)

    async def stop(self) -> None:
        """Graceful: a Sparkplug node publishes its NDEATH before it disconnects."""
        self._want_online = False
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def offline(self) -> None:
        """The node goes away (NDEATH published); scripting goes on in the model meanwhile."""
        await self.stop()

    async def online(self) -> None:
        await self.start()

    async def wait_connected(self, timeout: float = 15.0) -> None:
        await asyncio.wait_for(self._connected.wait(), timeout=timeout)

    async def _run(self) -> None:
        while self._want_online:
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except Exception as err:  # broker away: retry; the model keeps the values
                _log.info("machine publisher: %s: %s; reconnecting", type(err).__name__, err)
            finally:
                self._connected.clear()
                self._client = None
            await asyncio.sleep(self.reconnect_s)

    async def _session(self) -> None:
        will = None
        if self.mode == "sparkplug":
            self.bd_seq = (self.bd_seq + 1) % 256
            will = aiomqtt.Will(self._topic("NDEATH"), self._ndeath(), qos=1)
        async with aiomqtt.Client(self.host, self.port, will=will, timeout=5, keepalive=5,
                                  ) as client:
            try:
                if self.mode == "sparkplug":
                    await client.subscribe(self._topic("NCMD"), qos=1)
                async with self._lock:
                    self._client = client
                    await self._births(client)
                self._connected.set()
                async for message in client.messages:
                    await self._command(client, message.payload)
            finally:
                if self.mode == "sparkplug" and not self._want_online:
                    with contextlib.suppress(Exception):
                        await client.publish(self._topic("NDEATH"), self._ndeath(), qos=1)

    # ---------------------------------------------------------------- Sparkplug

    def _topic(self, kind: str, device: str | None = None) -> str:
        return f"spBv1.0/{self.group}/{kind}/{self.edge_node}" + (f"/{device}" if device else "")

    def _next_seq(self) -> int:
        seq, self._seq = self._seq, (self._seq + 1) % 256
        return seq

    def _ndeath(self) -> bytes:
        metric = spb.Metric(timestamp=_ms(), name="bdSeq", datatype=DT.INT64, value=self.bd_seq)
        return spb.NDeath(timestamp=_ms(), bd_seq_metric=metric).encode()

    async def _births(self, client: aiomqtt.Client) -> None:
        if self.mode == "json":
            for status in self._statuses.values():
                await self._send_json(client, status)
            return
        now = _ms()
        self._seq = 0
        node_metrics = (
            spb.Metric(timestamp=now, name="bdSeq", datatype=DT.INT64, value=self.bd_seq),
            spb.Metric(timestamp=now, name="Node Control/Rebirth", datatype=DT.BOOLEAN, value=False),
        )
        nbirth = spb.NBirth(timestamp=now, seq=self._next_seq(), metrics=node_metrics)
        await client.publish(self._topic("NBIRTH"), nbirth.encode(), qos=0)
        for mid, status in self._statuses.items():
            values = metric_values(status)
            metrics = tuple(
                spb.Metric(timestamp=now, name=name, datatype=self._types[name], value=value,
                           alias=self._aliases[name])
                for name, value in values.items()
            )
            dbirth = spb.DBirth(timestamp=now, seq=self._next_seq(), metrics=metrics)
            await client.publish(self._topic("DBIRTH", mid), dbirth.encode(), qos=0)
            self._sent[mid] = values
        self.published += 1 + len(self._statuses)

    async def _command(self, client: aiomqtt.Client, payload: Any) -> None:
        try:
            cmd = spb.NCmd.decode(bytes(payload))
        except Exception:
            return
        if any(m.name == "Node Control/Rebirth" and m.value for m in cmd.metrics):
            self.rebirths += 1
            async with self._lock:
                await self._births(client)

    async def device_death(self, machine_id: str) -> None:
        """The machine (a Sparkplug device) is gone: DDEATH; a later change publishes its DBIRTH again."""
        self._status(machine_id)
        async with self._lock:
            client = self._client
            if client is None or self.mode != "sparkplug":
                return
            death = spb.DDeath(timestamp=_ms(), seq=self._next_seq())
            await client.publish(self._topic("DDEATH", machine_id), death.encode(), qos=0)
            self._sent.pop(machine_id, None)

    # ---------------------------------------------------------------- publishing

    async def _publish(self, status: MachineStatus) -> dict[str, Any]:
        async with self._lock:
            client = self._client
            if client is not None:
                try:
                    if self.mode == "json":
                        await self._send_json(client, status)
                    else:
                        await self._send_spb(client, status)
                except aiomqtt.MqttError as err:  # the reconnect restates it
                    _log.info("machine publisher: publish failed (%s)", err)
        return status.as_dict()

    async def _send_json(self, client: aiomqtt.Client, status: MachineStatus) -> None:
        payload = json.dumps(json_status(status))
        await client.publish(f"{self.prefix}/{status.spec.id}", payload, qos=1, retain=True)
        self.published += 1

    async def _send_spb(self, client: aiomqtt.Client, status: MachineStatus) -> None:
        mid = status.spec.id
        values = metric_values(status)
        sent = self._sent.get(mid)
        now = _ms()
        if sent is None:  # after a DDEATH: born again
            metrics = tuple(spb.Metric(timestamp=now, name=n, datatype=self._types[n], value=v,
                                       alias=self._aliases[n]) for n, v in values.items())
            await client.publish(self._topic("DBIRTH", mid),
                                 spb.DBirth(timestamp=now, seq=self._next_seq(), metrics=metrics).encode(), qos=0)
        else:
            changed = tuple(
                spb.Metric(timestamp=now, name=None, datatype=self._types[n], value=v, alias=self._aliases[n])
                for n, v in values.items() if sent.get(n) != v
            )
            if not changed:
                return
            ddata = spb.DData(timestamp=now, seq=self._next_seq(), metrics=changed)
            await client.publish(self._topic("DDATA", mid), ddata.encode(), qos=0)
        self._sent[mid] = values
        self.published += 1

    # ---------------------------------------------------------------- scripting (scripting.py)

    @property
    def machine_ids(self) -> list[str]:
        return list(self._statuses)


def _ms() -> int:
    return int(time.time() * 1000)
