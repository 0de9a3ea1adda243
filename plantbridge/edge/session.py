"""One OPC UA endpoint: connect (security and trust list in `opcua_security`; user), resolve the
machines' nodes, read the current values, subscribe, and start over with backoff when the session
breaks (server restart, keepalive failure).

Notifications are read in asyncua's iterator mode (an unbounded queue, no task per notification)
and handed to the agent as :class:`~plantbridge.edge.machine.Change` batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.node import Node
from asyncua.common.subscription import DataChangeEvent, StatusChangeEvent, Subscription
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.uaerrors import UaError, UaStatusCodeError

from plantbridge.edge.config import EdgeConfig, EndpointConfig, MachineConfig
from plantbridge.edge.machine import Change
from plantbridge.edge.opcua_security import SecurityRefused, refused_by_server, secure
from plantbridge.edge.pki import CertificateRejected, edge_pki
from plantbridge.edge.states import MACHINERY_URI

_log = logging.getLogger(__name__)

_NSU = re.compile(r"^nsu=([^;]+);(.+)$")
_NODEID = re.compile(r"^(ns=\d+;)?[isgb]=")
# server-side queue sizes: every transition and counter reading within a publishing interval is kept
# (a reset between two publishes must not hide the parts counted before it); extra telemetry: 4
_QUEUE_ROLES = ("state", "stop_reason", "order", "operation", "operation_done", "good", "scrap", "cycle_time")
_QUEUE_SIZES = dict.fromkeys(_QUEUE_ROLES, 16)


class NodeResolutionError(LookupError):
    pass


@dataclass
class SessionStats:
    connects: int = 0
    reconnects: int = 0
    notifications: int = 0
    connected: bool = False
    last_error: str | None = None


Sink = Callable[[list[Change]], None]


class EndpointSession:
    def __init__(
        self,
        name: str,
        endpoint: EndpointConfig,
        machines: list[MachineConfig],
        config: EdgeConfig,
        sink: Sink,
        on_connect: Callable[[str, int | None], None],
    ) -> None:
        self.name = name
        self.endpoint = endpoint
        self.machines = machines
        self.config = config
        self.sink = sink
        self.on_connect = on_connect
        self.stats = SessionStats()
        self._stopping = asyncio.Event()
        self._client: Client | None = None

    async def run(self) -> None:
        delay = self.endpoint.reconnect_initial_s
        while not self._stopping.is_set():
            try:
                await self._session()
                delay = self.endpoint.reconnect_initial_s
            except asyncio.CancelledError:
                raise
            except (CertificateRejected, SecurityRefused) as err:  # an operator's decision is needed
                self.stats.last_error = str(err)
                _log.error("OPC UA %s; trying again in %.1fs", err, delay)
            except Exception as err:  # every failure means: reconnect later
                self.stats.last_error = f"{type(err).__name__}: {err}"
                _log.warning(
                    "OPC UA endpoint %s (%s): %s; reconnecting in %.1fs",
                    self.name,
                    self.endpoint.url,
                    self.stats.last_error,
                    delay,
                )
            finally:
                self.stats.connected = False
                await self._close()
            if self._stopping.is_set():
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=delay)
            delay = min(delay * 2, self.endpoint.reconnect_max_s)

    async def stop(self) -> None:
        self._stopping.set()

    async def _close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.disconnect(), timeout=2.0)

    async def _connect(self) -> Client:
        ep = self.endpoint
        client = Client(ep.url, timeout=ep.timeout_s, watchdog_intervall=ep.watchdog_s)
        client.session_timeout = 30000
        client.application_uri = self.config.application_uri
        client.name = client.description = f"plantbridge edge {self.config.source}"
        await secure(client, self.name, ep, edge_pki(self.config))
        credentials = ep.credentials()
        if credentials is not None:
            client.set_user(credentials[0])
            client.set_password(credentials[1])
        self._client = client
        try:
            await client.connect()
        except UaStatusCodeError as err:
            rejected = refused_by_server(err, self.name, ep, edge_pki(self.config))
            if rejected is None:
                raise
            raise rejected from None
        return client

    async def _session(self) -> None:
        client = await self._connect()
        lost = asyncio.Event()

        async def connection_lost(exc: Exception) -> None:
            self.stats.last_error = f"connection lost: {exc!r}"
            lost.set()

        client.connection_lost_callback = connection_lost
        namespaces = await client.get_namespace_array()
        machinery_ns = namespaces.index(MACHINERY_URI) if MACHINERY_URI in namespaces else None
        roles: dict[ua.NodeId, list[tuple[str, str]]] = {}
        by_queue: dict[int, list[Node]] = {}
        for machine in self.machines:
            for role, ref in machine.node_refs().items():
                node = await self._resolve(client, namespaces, ref, machine.id, role)
                if node.nodeid not in roles:
                    by_queue.setdefault(_QUEUE_SIZES.get(role, 4), []).append(node)
                roles.setdefault(node.nodeid, []).append((machine.id, role))
            self.on_connect(machine.id, machinery_ns)

        # the current values first: a change while we were away is a real change; an unchanged value
        # (a counter after a restart) gives no delta and no event
        nodes = [client.get_node(nid) for nid in roles]
        values = await _read_data_values(client, nodes)
        snapshot: list[Change] = []
        for node, dv in zip(nodes, values, strict=True):
            if dv.StatusCode is not None and not dv.StatusCode.is_good():
                continue
            value = dv.Value.Value if dv.Value is not None else None
            ts = _timestamp(dv)
            for machine_id, role in roles[node.nodeid]:
                snapshot.append(Change(machine_id, role, value, ts))
        self.sink(snapshot)

        params = ua.CreateSubscriptionParameters()
        params.RequestedPublishingInterval = self.endpoint.publishing_interval_ms
        params.RequestedLifetimeCount = 300
        params.RequestedMaxKeepAliveCount = max(3, int(2000 / self.endpoint.publishing_interval_ms))
        params.MaxNotificationsPerPublish = 0
        params.PublishingEnabled = True
        params.Priority = 0
        subscription = await client.create_subscription(params, None, queue_maxsize=0)
        for queuesize, group in by_queue.items():
            for start in range(0, len(group), 1000):
                chunk: list[Node] = group[start : start + 1000]
                results = await subscription.subscribe_data_change(chunk, queuesize=queuesize)
                for result in results if isinstance(results, list) else [results]:
                    if isinstance(result, ua.StatusCode):
                        _log.warning("endpoint %s: a monitored item was refused: %s", self.name, result)
        self.stats.connects += 1
        if self.stats.connects > 1:
            self.stats.reconnects += 1
        self.stats.connected = True
        _log.info("OPC UA endpoint %s connected (%d nodes, %d machines)", self.name, len(roles), len(self.machines))

        consumer = asyncio.create_task(self._consume(subscription, roles), name=f"edge-opcua-{self.name}")
        waiters = {
            consumer,
            asyncio.create_task(lost.wait()),
            asyncio.create_task(self._stopping.wait()),
        }
        try:
            done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            if consumer in done and consumer.exception() is not None:
                raise consumer.exception()  # type: ignore[misc]
            if lost.is_set():
                raise ConnectionError(self.stats.last_error or "connection lost")
        finally:
            for task in waiters:
                task.cancel()
            for task in waiters:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _consume(self, subscription: Subscription, roles: dict[ua.NodeId, list[tuple[str, str]]]) -> None:
        sink = self.sink
        stats = self.stats
        async for event in subscription:
            if isinstance(event, DataChangeEvent):
                entries = roles.get(event.node.nodeid)
                if entries is None:
                    continue
                dv = event.data.monitored_item.Value
                ts = _timestamp(dv)
                stats.notifications += 1
                sink([Change(mid, role, event.value, ts) for mid, role in entries])
            elif isinstance(event, StatusChangeEvent):
                status = event.notification.Status
                if not status.is_good():
                    raise ConnectionError(f"subscription status {status}")
        raise ConnectionError("subscription closed")

    async def _resolve(self, client: Client, namespaces: list[str], ref: str, machine_id: str, role: str) -> Node:
        try:
            match = _NSU.match(ref)
            if match:
                uri, rest = match.groups()
                if uri not in namespaces:
                    raise NodeResolutionError(f"namespace {uri!r} is not on the server")
                return client.get_node(f"ns={namespaces.index(uri)};{rest}")
            if _NODEID.match(ref):
                return client.get_node(ref)
            path = [self._qualified(part, namespaces) for part in ref.strip("/").split("/") if part]
            if path and path[0] == "0:Objects":
                path = path[1:]
            return await client.nodes.objects.get_child(path)
        except NodeResolutionError as err:
            raise NodeResolutionError(f"machine {machine_id} {role} {ref!r}: {err}") from None
        except UaError as err:
            raise NodeResolutionError(f"machine {machine_id} {role} {ref!r}: not found ({err})") from None

    def _qualified(self, part: str, namespaces: list[str]) -> str:
        prefix, sep, name = part.partition(":")
        if not sep:
            return f"0:{part}"
        if prefix.isdigit():
            return part
        uri = self.config.namespaces.get(prefix, prefix)
        if uri not in namespaces:
            raise NodeResolutionError(f"namespace {prefix!r} ({uri}) is not on the server")
        return f"{namespaces.index(uri)}:{name}"


async def _read_data_values(client: Client, nodes: list[Node]) -> list[ua.DataValue]:
    values: list[ua.DataValue] = []
    for start in range(0, len(nodes), 1000):
        params = ua.ReadParameters()
        for node in nodes[start : start + 1000]:
            rv = ua.ReadValueId()
            rv.NodeId = node.nodeid
            rv.AttributeId = AttributeIds.Value
            params.NodesToRead.append(rv)
        params.TimestampsToReturn = ua.TimestampsToReturn.Both
        values.extend(await client.uaclient.read(params))
    return values


def _timestamp(dv: Any) -> datetime:
    ts: datetime | None = getattr(dv, "SourceTimestamp", None) or getattr(dv, "ServerTimestamp", None)
    if ts is None:
        return datetime.now(UTC)
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)
