"""The gateway's side of the Unified Namespace: each order's state change, published retained.

The gateway learns an order's state from every acknowledgement the saga gives (``order_state``), from
the ERP release that starts the saga, and after a supervisor lever (release hold, cancel), by asking
the saga again a few times until its state moved; a completed order is followed the same way to
`posted` (the saga posts it without a further plant event). Each change is published once, retained, at QoS 1
(see :mod:`plantbridge.uns` for the topic tree); nothing here waits for the broker or can fail an
answer to the plant.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from datetime import UTC, datetime
from typing import Any

from temporalio.client import Client

from plantbridge.canonical.ack import Acknowledgement
from plantbridge.canonical.events import PlantEvent
from plantbridge.canonical.states import OrderState
from plantbridge.client import order_state
from plantbridge.uns import UnsConfig, UnsPublisher

_log = logging.getLogger("plantbridge.gateway.uns")

MEMORY = 50_000  # orders whose last published state is remembered (to publish changes only)
LEVER_POLL_S = (0.2, 0.4, 0.8, 1.5, 3.0, 5.0)
# A completed order is posted (or put on hold) by the saga without a further plant event: ask again.
POSTING_POLL_S = (0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 15.0, 30.0, 60.0)


class OrderStates:
    """Publishes order state changes to the UNS."""

    def __init__(self, publisher: UnsPublisher, source: str = "plantbridge-gateway",
                 client: Client | None = None) -> None:
        self.publisher = publisher
        self.client = client  # to follow a completed order to `posted` (None: not followed)
        self.source = source
        self._last: collections.OrderedDict[tuple[str, str], str] = collections.OrderedDict()
        self._watches: set[asyncio.Task[None]] = set()

    @classmethod
    def from_config(cls, config: UnsConfig, client: Client | None = None) -> OrderStates:
        return cls(UnsPublisher(config, client_id="plantbridge-gateway-uns"), client=client)

    def acknowledged(self, event: PlantEvent, ack: Acknowledgement) -> None:
        """The state an acknowledgement reports (if any)."""
        if ack.order_state is not None and ack.status != "rejected":
            self.state(event.plant, event.order, ack.order_state,
                       cause={"event_id": event.event_id, "event_type": event.event_type.value})
            if ack.order_state is OrderState.COMPLETED and self.client is not None:
                self._follow(self.client, event.plant, event.order, OrderState.COMPLETED, "erp_posting",
                             POSTING_POLL_S)

    def state(self, plant: str, order: str, state: OrderState | str, *, cause: dict[str, Any] | None = None) -> None:
        """Publish ``state`` if it is not the last one published for the order."""
        try:
            value = OrderState(state).value
            key = (plant, order)
            previous = self._last.get(key)
            if previous == value:
                return
            self._last[key] = value
            self._last.move_to_end(key)
            while len(self._last) > MEMORY:
                self._last.popitem(last=False)
            self.publisher.publish_order_state(plant, order, {
                "plant": plant, "order": order, "state": value, "previous": previous,
                "at": datetime.now(UTC).isoformat(), "source": self.source, "cause": cause or {},
            })
        except Exception:  # never let the UNS hurt an answer
            _log.exception("UNS: order %s/%s state not published", plant, order)

    def after_lever(self, client: Client, plant: str, order: str, before: OrderState, action: str) -> None:
        """A supervisor lever was sent: publish the state the saga moves to (in the background)."""
        self._follow(client, plant, order, before, action, LEVER_POLL_S)

    def _follow(self, client: Client, plant: str, order: str, before: OrderState, why: str,
                polls: tuple[float, ...]) -> None:
        try:
            task = asyncio.get_running_loop().create_task(self._watch(client, plant, order, before, why, polls))
        except Exception:
            _log.exception("UNS: cannot watch order %s/%s", plant, order)
            return
        self._watches.add(task)
        task.add_done_callback(self._watches.discard)

    async def _watch(self, client: Client, plant: str, order: str, before: OrderState, action: str,
                     polls: tuple[float, ...]) -> None:
        for delay in polls:
            await asyncio.sleep(delay)
            try:
                view = await order_state(client, plant, order)
            except Exception as err:
                _log.debug("UNS: order %s/%s state after %s not read: %s", plant, order, action, err)
                continue
            if view.state is not before:
                self.state(plant, order, view.state,
                           cause={"lever": action} if polls is LEVER_POLL_S else {"after": action})
                return

    async def close(self) -> None:
        for task in list(self._watches):
            task.cancel()
        await self.publisher.stop()
