"""One MQTT broker as a source of machine values, beside the OPC UA sessions (``session.py``).

Like an OPC UA session it hands :class:`~plantbridge.edge.machine.Change` batches to the agent, so
the same :class:`~plantbridge.edge.machine.MachineTracker` logic (downtime, counters with reset and
wrap, confirmations, rollups), the outbox and the ordered forwarding apply unchanged.

The connection is QoS 1 with a persistent session (MQTT 3.1.1 ``clean_session`` off, a stable client
id): what was published while the agent or its connection was away is delivered when it is back; on
a broker with persistence that holds across a broker restart too. It reconnects with backoff.

Plain JSON topics are read by :class:`JsonRouter`, Sparkplug B by
:class:`~plantbridge.edge.sparkplug_host.SparkplugHost`. A value older than the last one applied for
the same machine role (a retained copy, a redelivery after a reconnect) is dropped, so a counter never
appears to go back (which would read as a reset).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aiomqtt

from plantbridge.edge.config import EdgeConfig, MachineConfig
from plantbridge.edge.machine import Change
from plantbridge.edge.mqtt_config import JsonSource, MqttEndpointConfig
from plantbridge.edge.session import SessionStats
from plantbridge.edge.sparkplug_host import SparkplugHost

_log = logging.getLogger(__name__)

Sink = Callable[[list[Change]], None]


class JsonRouter:
    """Plain JSON topics: topic -> [(machine, role, field path)], the source time from a payload field."""

    def __init__(self, machines: list[MachineConfig]) -> None:
        self.routes: dict[str, list[tuple[str, str, list[str], list[str] | None]]] = {}
        for machine in machines:
            src = machine.mqtt
            if not isinstance(src, JsonSource):
                continue
            ts_path = _split(src.timestamp) if src.timestamp is not None else None
            fields = list(src.fields.items()) + [(f"extra:{n}", f) for n, f in src.telemetry.items()]
            for role, spec in fields:
                topic = spec.topic.replace("{id}", machine.id)
                self.routes.setdefault(topic, []).append((machine.id, role, _split(spec.path), ts_path))
        self.undecodable = 0

    def handle(self, topic: str, payload: bytes, now: datetime) -> list[Change]:
        routes = self.routes.get(topic)
        if not routes:
            return []
        try:
            data = json.loads(payload) if payload else None
        except ValueError:
            self.undecodable += 1
            _log.warning("MQTT %s: payload is not JSON: %r", topic, payload[:80])
            return []
        changes = []
        for machine_id, role, path, ts_path in routes:
            found, value = _dig(data, path)
            if not found:
                continue  # this message does not carry the role
            ts = now
            if ts_path is not None:
                found, raw_ts = _dig(data, ts_path)
                ts = _parse_ts(raw_ts, now) if found else now
            changes.append(Change(machine_id, role, value, ts))
        return changes


class MqttSession:
    """The machines of one broker endpoint; ``run()`` until ``stop()``."""

    def __init__(
        self, name: str, endpoint: MqttEndpointConfig, machines: list[MachineConfig], config: EdgeConfig, sink: Sink
    ) -> None:
        self.name = name
        self.endpoint = endpoint
        self.machines = machines
        self.config = config
        self.sink = sink
        self.stats = SessionStats()
        self.json = JsonRouter(machines)
        self.sparkplug = SparkplugHost(machines)
        self.client_id = endpoint.client_id or f"plantbridge-{config.source}-{name}"
        self._applied: dict[tuple[str, str], datetime] = {}  # (machine, role) -> source time applied
        self._stopping = asyncio.Event()
        self.client: aiomqtt.Client | None = None

    async def run(self) -> None:
        delay = self.endpoint.reconnect_initial_s
        while not self._stopping.is_set():
            try:
                await self._session()
                delay = self.endpoint.reconnect_initial_s
            except asyncio.CancelledError:
                raise
            except Exception as err:  # every failure means: reconnect later
                self.stats.last_error = f"{type(err).__name__}: {err}"
                _log.warning("MQTT endpoint %s (%s): %s; reconnecting in %.1fs", self.name, self.endpoint.url,
                             self.stats.last_error, delay)
            finally:
                self.stats.connected = False
                self.client = None
            if self._stopping.is_set():
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=delay)
            delay = min(delay * 2, self.endpoint.reconnect_max_s)

    async def stop(self) -> None:
        self._stopping.set()

    def _client(self) -> aiomqtt.Client:
        ep = self.endpoint
        credentials = ep.credentials()
        tls = None
        if ep.tls:
            tls = aiomqtt.TLSParameters(
                ca_certs=str(ep.ca_cert) if ep.ca_cert else None,
                certfile=str(ep.client_cert) if ep.client_cert else None,
                keyfile=str(ep.client_key) if ep.client_key else None,
            )
        return aiomqtt.Client(
            ep.host,
            ep.port,
            identifier=self.client_id,
            clean_session=False,
            protocol=aiomqtt.ProtocolVersion.V311,
            keepalive=ep.keepalive_s,
            username=credentials[0] if credentials else None,
            password=credentials[1] if credentials else None,
            tls_params=tls,
            timeout=10,
        )

    def topics(self) -> list[str]:
        return sorted(self.json.routes) + self.sparkplug.subscriptions()

    async def _session(self) -> None:
        async with self._client() as client:
            self.client = client
            topics = self.topics()
            if topics:
                await client.subscribe([(t, 1) for t in topics])
            self.stats.connects += 1
            if self.stats.connects > 1:
                self.stats.reconnects += 1
            self.stats.connected = True
            _log.info("MQTT endpoint %s connected as %s (%d topics, %d machines)", self.name, self.client_id,
                      len(topics), len(self.machines))
            for key in self.sparkplug.without_birth():  # a host that lacks a node's birth asks for it
                await self._rebirth(client, key)
            consumer = asyncio.create_task(self._consume(client), name=f"edge-mqtt-{self.name}")
            stopping = asyncio.create_task(self._stopping.wait())
            try:
                done, _ = await asyncio.wait({consumer, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if consumer in done:
                    consumer.result()  # the error that ended it
                    raise ConnectionError("message stream ended")
            finally:
                for task in (consumer, stopping):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task

    async def _consume(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            payload = message.payload if isinstance(message.payload, bytes) else str(message.payload or "").encode()
            self.stats.notifications += 1
            changes, rebirths = self.handle(message.topic.value, payload)
            if changes:
                self.sink(changes)
            for key in rebirths:
                await self._rebirth(client, key)

    def handle(self, topic: str, payload: bytes) -> tuple[list[Change], list[tuple[str, str]]]:
        """One message: the changes to apply and the Sparkplug nodes to ask for a rebirth.

        JSON: a value older than the one applied for the machine role (a retained copy or a redelivery
        after a reconnect) is dropped. Sparkplug messages arrive in ``seq`` order and a birth restates
        the current values, so an older source time is raised to the last applied one instead (a
        birth after a death must not go back before the death)."""
        now = datetime.now(UTC)
        fresh = []
        for change in self.json.handle(topic, payload, now):
            last = self._applied.get((change.machine, change.role))
            if last is None or change.ts >= last:
                self._applied[(change.machine, change.role)] = change.ts
                fresh.append(change)
        rebirths: list[tuple[str, str]] = []
        if topic.startswith("spBv1.0/"):
            changes, rebirths = self.sparkplug.handle(topic, payload, now, time.monotonic())
            for change in changes:
                floor = self._applied.get((change.machine, "*"))
                if floor is not None and change.ts < floor:
                    change.ts = floor
                self._applied[(change.machine, "*")] = max(change.ts, floor or change.ts)
                fresh.append(change)
        return fresh, rebirths

    async def _rebirth(self, client: aiomqtt.Client, key: tuple[str, str]) -> None:
        topic, payload = self.sparkplug.rebirth_request(key, int(time.time() * 1000))
        _log.info("MQTT endpoint %s: asking Sparkplug node %s/%s for a rebirth", self.name, *key)
        with contextlib.suppress(aiomqtt.MqttError):
            await client.publish(topic, payload, qos=0)

    def describe(self) -> dict[str, Any]:
        s = self.sparkplug.stats
        return {"births": s.births, "deaths": s.deaths, "seq_gaps": s.seq_gaps,
                "rebirths_requested": s.rebirths_requested,
                "undecodable": s.undecodable + self.json.undecodable}


def _split(path: str) -> list[str]:
    return [part for part in path.split(".") if part]


def _dig(data: Any, path: list[str]) -> tuple[bool, Any]:
    for part in path:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return False, None
    return True, data


def _parse_ts(raw: Any, default: datetime) -> datetime:
    try:
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            return datetime.fromtimestamp(raw / 1000, UTC)
        if isinstance(raw, str):
            ts = datetime.fromisoformat(raw)
            return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        pass
    return default
