"""The Unified Namespace out: plant events and order states published to an ISA-95 MQTT topic tree.

Dashboards and analytics subscribe to the broker instead of polling the ERP. Two kinds of message:

* **events** (the edge, each canonical plant event the gateway accepted): not retained, QoS 1, on
  ``event_topic`` (default ``{enterprise}/{site}/{area}/{line}/{cell}/plantbridge/events/{event_type}``);
  the payload is the canonical plant event as forwarded (JSON).
* **order state** (the gateway, each change it learns): retained, QoS 1, on ``order_topic`` (default
  ``{enterprise}/{site}/plantbridge/orders/{order}/state``); a new subscriber gets every order's
  latest state at once.

Publishing never blocks nor fails the caller: :meth:`UnsPublisher.publish` appends to a bounded queue
(the oldest message is dropped when full, counted and logged) and one background task sends it,
reconnecting with backoff while the broker is away.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import string
from dataclasses import dataclass
from typing import Any

import aiomqtt
from pydantic import Field, field_validator

from plantbridge.mqtt_broker import MqttEndpointConfig, _Strict

_log = logging.getLogger("plantbridge.uns")

TEMPLATE_FIELDS = frozenset(
    {"enterprise", "site", "area", "line", "cell", "plant", "work_center", "machine", "order", "operation",
     "event_type"}
)
DEFAULT_EVENT_TOPIC = "{enterprise}/{site}/{area}/{line}/{cell}/plantbridge/events/{event_type}"
DEFAULT_ORDER_TOPIC = "{enterprise}/{site}/plantbridge/orders/{order}/state"
_UNSAFE = str.maketrans({"/": "_", "+": "_", "#": "_", "\x00": "_"})


def _check_template(value: str) -> str:
    names = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
    unknown = sorted(names - TEMPLATE_FIELDS)
    if unknown:
        raise ValueError(f"unknown placeholder(s) {', '.join('{' + n + '}' for n in unknown)} "
                         f"(known: {', '.join(sorted(TEMPLATE_FIELDS))})")
    literal = "".join(text for text, *_ in string.Formatter().parse(value))
    if "+" in literal or "#" in literal or value.startswith("/") or value.endswith("/") or "//" in value:
        raise ValueError("a topic template has no wildcards, no empty levels and no leading or trailing '/'")
    return value


class UnsLevels(_Strict):
    """Where a work center sits in the ISA-95 hierarchy (``{area}``/``{line}``)."""

    area: str = Field(min_length=1, max_length=64)
    line: str | None = Field(default=None, min_length=1, max_length=64, description="default the work center")


class UnsConfig(MqttEndpointConfig):
    """The broker (same keys as an MQTT endpoint: url, TLS files, credentials by env) and the topic tree."""

    enterprise: str = Field(default="plantbridge", min_length=1, max_length=64)
    site: str = Field(default="{plant}", min_length=1, max_length=64, description="template; default the plant code")
    default_area: str = Field(default="production", min_length=1, max_length=64)
    work_centers: dict[str, UnsLevels] = Field(default_factory=dict, description="work center -> area and line")
    event_topic: str = DEFAULT_EVENT_TOPIC
    order_topic: str = DEFAULT_ORDER_TOPIC
    qos: int = Field(default=1, ge=0, le=2)
    queue_size: int = Field(default=10_000, ge=1, le=1_000_000, description="bounded; the oldest is dropped")

    @field_validator("event_topic", "order_topic", "site")
    @classmethod
    def _templates(cls, value: str) -> str:
        return _check_template(value)

    def levels(self, *, plant: str, work_center: str | None = None, machine: str | None = None,
               order: str | None = None, operation: str | None = None, event_type: str | None = None) -> dict[str, str]:
        """The template values for one message (each made safe as one topic level)."""
        wc = work_center or "_"
        place = self.work_centers.get(wc)
        raw = {"plant": plant, "work_center": wc, "machine": machine or wc, "order": order or "_",
               "operation": operation or "_", "event_type": event_type or "_", "enterprise": self.enterprise}
        raw["site"] = self.site.format(**{k: _safe(v) for k, v in raw.items()})
        raw["area"] = place.area if place is not None else self.default_area
        raw["line"] = (place.line if place is not None and place.line else None) or wc
        raw["cell"] = machine or wc
        return {k: _safe(v) for k, v in raw.items()}

    def event_topic_for(self, event: dict[str, Any]) -> str:
        return self.event_topic.format(**self.levels(
            plant=str(event.get("plant") or "_"), work_center=_opt(event.get("work_center")),
            machine=_opt(event.get("equipment")), order=_opt(event.get("order")),
            operation=_opt(event.get("operation")), event_type=_opt(event.get("event_type"))))

    def order_topic_for(self, plant: str, order: str) -> str:
        return self.order_topic.format(**self.levels(plant=plant, order=order))


def _opt(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _safe(value: str) -> str:
    return value.translate(_UNSAFE) or "_"


@dataclass
class UnsStats:
    queued: int = 0
    published: int = 0
    dropped: int = 0
    failures: int = 0
    connected: bool = False
    last_error: str | None = None


@dataclass
class _Message:
    topic: str
    payload: bytes
    retain: bool


class UnsPublisher:
    """Fire-and-forget MQTT publishing: a bounded queue (drop-oldest) and one sending task."""

    def __init__(self, config: UnsConfig, client_id: str) -> None:
        self.config = config
        self.client_id = config.client_id or client_id
        self.stats = UnsStats()
        self._queue: collections.deque[_Message] = collections.deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()  # set while the queue is empty and sent
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    # ------------------------------------------------------------------ the callers' side

    def publish(self, topic: str, payload: dict[str, Any], *, retain: bool) -> None:
        """Queue one message; never raises, never waits."""
        try:
            data = json.dumps(payload, ensure_ascii=False, default=str).encode()
            if len(self._queue) >= self.config.queue_size:
                self._queue.popleft()
                self.stats.dropped += 1
                if self.stats.dropped == 1 or self.stats.dropped % 1000 == 0:
                    _log.warning("UNS queue full (%d): dropped the oldest message (%d dropped so far); broker %s %s",
                                 self.config.queue_size, self.stats.dropped, self.config.url,
                                 "connected" if self.stats.connected else "unreachable")
            self._queue.append(_Message(topic, data, retain))
            self.stats.queued += 1
            self._idle.clear()
            self._wake.set()
            self._ensure_task()
        except Exception:  # never let the UNS hurt the caller
            _log.exception("UNS: could not queue a message for %s", topic)

    def publish_event(self, event: dict[str, Any]) -> None:
        """A canonical plant event (not retained)."""
        try:
            topic = self.config.event_topic_for(event)
        except Exception:
            _log.exception("UNS: no topic for event %s", event.get("event_id"))
            return
        self.publish(topic, event, retain=False)

    def publish_events(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            self.publish_event(event)

    def publish_order_state(self, plant: str, order: str, payload: dict[str, Any]) -> None:
        """An order's state (retained: a new subscriber gets the latest at once)."""
        try:
            topic = self.config.order_topic_for(plant, order)
        except Exception:
            _log.exception("UNS: no topic for order %s/%s", plant, order)
            return
        self.publish(topic, payload, retain=True)

    @property
    def pending(self) -> int:
        return len(self._queue)

    # ------------------------------------------------------------------ lifecycle

    def _ensure_task(self) -> None:
        if self._task is None and not self._stopping:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="uns-publisher")

    async def start(self) -> None:
        self._ensure_task()

    async def stop(self, flush_s: float = 2.0) -> None:
        """Give the queue up to ``flush_s`` to drain, then stop."""
        if self._queue and self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), timeout=flush_s)
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        if self._queue:
            _log.warning("UNS publisher stopped with %d message(s) unsent", len(self._queue))

    async def _run(self) -> None:
        delay = self.config.reconnect_initial_s
        while not self._stopping:
            try:
                async with self._client() as client:
                    self.stats.connected = True
                    delay = self.config.reconnect_initial_s
                    _log.info("UNS publisher connected to %s", self.config.url)
                    await self._drain(client)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # aiomqtt.MqttError, OSError, TLS, credentials
                self.stats.failures += 1
                if self.stats.connected or self.stats.failures == 1:
                    _log.warning("UNS broker %s unavailable (%s); %d message(s) queued, retrying",
                                 self.config.url, err, len(self._queue))
                self.stats.last_error = str(err)[:300]
            finally:
                self.stats.connected = False
            if self._stopping:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.config.reconnect_max_s)

    async def _drain(self, client: aiomqtt.Client) -> None:
        while not self._stopping:
            if not self._queue:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            msg = self._queue[0]
            await client.publish(msg.topic, msg.payload, qos=self.config.qos, retain=msg.retain)
            if self._queue and self._queue[0] is msg:  # not dropped meanwhile
                self._queue.popleft()
            self.stats.published += 1

    def _client(self) -> aiomqtt.Client:
        cfg = self.config
        credentials = cfg.credentials()
        tls = None
        if cfg.tls:
            tls = aiomqtt.TLSParameters(
                ca_certs=str(cfg.ca_cert) if cfg.ca_cert else None,
                certfile=str(cfg.client_cert) if cfg.client_cert else None,
                keyfile=str(cfg.client_key) if cfg.client_key else None,
            )
        return aiomqtt.Client(
            cfg.host, cfg.port, identifier=self.client_id, clean_session=True,
            protocol=aiomqtt.ProtocolVersion.V311, keepalive=cfg.keepalive_s,
            username=credentials[0] if credentials else None, password=credentials[1] if credentials else None,
            tls_params=tls, timeout=10,
        )
