"""What one plant event costs, counted in the histories the bench's orders left on the Temporal server.

`history_costs` fetches the histories of a sample of orders (their latest run: a saga that continued
as new counts from its last start) and counts, over their whole life (release, the plant events,
completion), workflow tasks, activities and history events, divided by the plant events sent to those
orders. It also reports the largest payload and the history size per order, as stored (encoded, and
encrypted when the bench's processes have codec keys).
"""

from __future__ import annotations

import asyncio
from typing import Any

from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from plantbridge.canonical.order import workflow_id


def payload_sizes(message: Message) -> list[int]:
    """The sizes in bytes of every Payload inside a protobuf message (at any depth)."""
    if isinstance(message, Payload):
        return [message.ByteSize()]
    sizes: list[int] = []
    for _field, value in message.ListFields():
        if isinstance(value, Message):
            items: Any = [value]
        elif hasattr(value, "values"):  # a map field
            items = value.values()
        elif isinstance(value, str | bytes | int | float | bool):
            continue
        else:  # a repeated field
            items = value
        for item in items:
            if isinstance(item, Message):
                sizes.extend(payload_sizes(item))
    return sizes


async def order_history(client: Client, plant: str, order: str) -> dict[str, int]:
    history = await client.get_workflow_handle(workflow_id(plant, order)).fetch_history()
    events = list(history.events)
    payloads = [size for e in events for size in payload_sizes(e)]
    return {
        "history_events": len(events),
        "workflow_tasks": sum(e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED for e in events),
        "activities": sum(e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED for e in events),
        "history_bytes": sum(e.ByteSize() for e in events),
        "largest_payload_bytes": max(payloads, default=0),
    }


async def history_costs(client: Client, plant: str, orders: list[str], events_per_order: int) -> dict[str, Any]:
    """Per plant event (over the sample's whole life) and per order, from the sample's histories."""
    got = await asyncio.gather(*(order_history(client, plant, o) for o in orders))
    events = max(1, events_per_order * len(got))
    total = {k: sum(h[k] for h in got) for k in ("workflow_tasks", "activities", "history_events")}
    return {
        "sample_orders": len(got),
        "per_plant_event": {k: round(v / events, 2) for k, v in total.items()},
        "per_order": {
            "history_events_max": max((h["history_events"] for h in got), default=0),
            "history_bytes_max": max((h["history_bytes"] for h in got), default=0),
            "history_bytes_mean": round(sum(h["history_bytes"] for h in got) / max(1, len(got))),
            "largest_payload_bytes": max((h["largest_payload_bytes"] for h in got), default=0),
        },
    }
