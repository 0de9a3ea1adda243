"""S/4HANA business events, sent as CloudEvents (structured JSON mode) to a webhook.

SAP's production order event spec (SAP Business Accelerator Hub, in
``../shared/fixtures/sap/events``) defines ``sap.s4.beh.productionorder.v1.ProductionOrder.Created.v1``
and ``...Changed.v1`` with ``data = {"ManufacturingOrder": ...}`` and the CloudEvents context
``specversion``, ``type``, ``source``, ``subject``, ``id``, ``time``, ``datacontenttype``.
These two are the only production-order event types SAP has (ORDER-FACTS 2.1, 2.5): the simulator
sends ``Created.v1`` on creation and ``Changed.v1`` on every later change, as S/4HANA does: a
release, a quantity, date, operation or component change, TECO, a lock, the deletion flag. Events
are "notification" events: their data carries the key only, consumers read the order (its status
flags and ``LastChangeDateTime``) through OData.

Delivery runs in the background with a few retries (or, with ``retry_for_s``, as an Event Mesh queue
does: again and again, honouring ``Retry-After``, until that time has passed); failures are logged and
kept in the delivery log (admin API), never raised into the request that caused the event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import httpx

from plantbridge_devtools.simulators.sap.odata import now_utc, timestamp_str

log = logging.getLogger(__name__)

PRODUCTION_ORDER_EVENT = "sap.s4.beh.productionorder.v1.ProductionOrder.{}.v1"
CREATED = PRODUCTION_ORDER_EVENT.format("Created")
CHANGED = PRODUCTION_ORDER_EVENT.format("Changed")


@dataclass
class PendingEvent:
    type: str
    subject: str
    data: dict[str, Any]


@dataclass
class Delivery:
    event: dict[str, Any]
    status: str = "pending"  # pending, delivered, failed
    attempts: int = 0
    last_error: str = ""
    http_status: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.event["id"],
            "type": self.event["type"],
            "subject": self.event.get("subject"),
            "status": self.status,
            "attempts": self.attempts,
            "http_status": self.http_status,
            "last_error": self.last_error,
        }


@dataclass
class EventPublisher:
    url: str | None
    headers: dict[str, str]
    source: str
    retries: int = 3
    backoff_s: tuple[float, ...] = (0.2, 0.5, 1.0)
    timeout_s: float = 5.0
    retry_for_s: float = 0.0  # > 0: keep retrying this long (backoff up to 5 s, Retry-After honoured)
    deliveries: deque[Delivery] = field(default_factory=lambda: deque(maxlen=500))
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _client: httpx.AsyncClient | None = None

    def cloud_event(self, pending: PendingEvent) -> dict[str, Any]:
        return {
            "specversion": "1.0",
            "type": pending.type,
            "source": self.source,
            "subject": pending.subject,
            "id": str(uuid.uuid4()),
            "time": timestamp_str(now_utc()),
            "datacontenttype": "application/json",
            "data": pending.data,
        }

    def publish(self, events: list[PendingEvent]) -> None:
        """Schedule delivery of ``events`` (in order) on the running loop; no-op without a webhook."""
        if not self.url or not events:
            return
        deliveries = [Delivery(self.cloud_event(e)) for e in events]
        self.deliveries.extend(deliveries)
        task = asyncio.get_running_loop().create_task(self._deliver_all(deliveries))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver_all(self, deliveries: list[Delivery]) -> None:
        for delivery in deliveries:
            await self._deliver(delivery)

    async def _deliver(self, delivery: Delivery) -> None:
        assert self.url is not None
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout_s)
        headers = {"Content-Type": "application/cloudevents+json", **self.headers}
        give_up = time.monotonic() + self.retry_for_s
        attempt = 0
        while True:
            attempt += 1
            delivery.attempts = attempt
            pause = self.backoff_s[min(attempt - 1, len(self.backoff_s) - 1)]
            try:
                response = await self._client.post(self.url, json=delivery.event, headers=headers)
                delivery.http_status = response.status_code
                if response.status_code < 300:
                    delivery.status = "delivered"
                    return
                delivery.last_error = f"HTTP {response.status_code}: {response.text[:200]}"
                if self.retry_for_s > 0 and response.status_code < 500 and response.status_code not in (408, 425, 429):
                    break  # refused for good: a queue moves it to its dead letters
                with contextlib.suppress(ValueError):
                    pause = max(pause, min(float(response.headers.get("Retry-After", "")), 30.0))
            except httpx.HTTPError as exc:
                delivery.last_error = f"{type(exc).__name__}: {exc}"
            if self.retry_for_s > 0:
                if time.monotonic() + pause > give_up:
                    break
                pause = max(pause, min(0.25 * 2 ** attempt, 5.0))
            elif attempt > self.retries:
                break
            await asyncio.sleep(pause)
        delivery.status = "failed"
        log.warning(
            "event %s (%s) not delivered to %s: %s",
            delivery.event["id"],
            delivery.event["type"],
            self.url,
            delivery.last_error,
        )

    async def drain(self, timeout_s: float = 2.0) -> None:
        """Wait briefly for deliveries in flight (used at shutdown and by tests)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout_s)

    async def aclose(self) -> None:
        await self.drain()
        for task in list(self._tasks):
            task.cancel()
        if self._client is not None:
            await self._client.aclose()
            self._client = None
