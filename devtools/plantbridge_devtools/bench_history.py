"""What one plant event costs, counted in the histories the bench's orders left on the Temporal server.

`history_costs` fetches the histories of a sample of orders (their latest run: a saga that continued
as new counts from its last start) and counts, over their whole life (release, the plant events,
completion), workflow tasks, activities and history events, divided by the plant events sent to those
orders. It also reports the largest payload and the history size per order, as stored (encoded, and
encrypted when the bench's processes have codec keys). `per_plant_event_by_kind` breaks the counts
down by history event type, activity type, marker name and local activity type (from the local
activity markers' data), so a change shows where it saved.
`PLANTBRIDGE_BENCH_HISTORY_DIR=<folder>` writes each sampled history there as JSON, to read one order's
events after a run.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload, Payloads
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


def local_activity_type(details: Mapping[str, Payloads]) -> str | None:
    """The activity type of a local activity's marker (its `data` payload: the SDK core's JSON), else None."""
    data = details.get("data")
    if data is None or not data.payloads:
        return None
    try:
        found = json.loads(data.payloads[0].data).get("activity_type")
    except (ValueError, AttributeError):  # an encrypted payload (codec keys) or another marker's data
        return None
    return found if isinstance(found, str) else None


async def order_history(client: Client, plant: str, order: str) -> dict[str, Any]:
    history = await client.get_workflow_handle(workflow_id(plant, order)).fetch_history()
    events = list(history.events)
    if dump := os.environ.get("PLANTBRIDGE_BENCH_HISTORY_DIR"):  # for reading one order's history after a run
        Path(dump, f"{plant}-{order}.json").write_text(history.to_json())
    payloads = [size for e in events for size in payload_sizes(e)]
    kinds = Counter(EventType.Name(e.event_type).removeprefix("EVENT_TYPE_").lower() for e in events)
    activity_types = Counter(
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    )
    local = Counter(
        e.marker_recorded_event_attributes.marker_name
        for e in events if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
    )
    local_activities = Counter(
        name for e in events if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
        and (name := local_activity_type(e.marker_recorded_event_attributes.details))
    )
    return {
        "history_events": len(events),
        "by_event_type": dict(kinds),
        "by_activity": dict(activity_types),
        "markers": dict(local),
        "by_local_activity": dict(local_activities),
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
    breakdown: dict[str, Counter[str]] = {
        k: Counter() for k in ("by_event_type", "by_activity", "markers", "by_local_activity")}
    for h in got:
        for k, counter in breakdown.items():
            counter.update(h[k])
    return {
        "sample_orders": len(got),
        "per_plant_event": {k: round(v / events, 2) for k, v in total.items()},
        "per_plant_event_by_kind": {
            k: {name: round(n / events, 3) for name, n in counter.most_common()} for k, counter in breakdown.items()
        },
        "per_order": {
            "history_events_max": max((h["history_events"] for h in got), default=0),
            "history_bytes_max": max((h["history_bytes"] for h in got), default=0),
            "history_bytes_mean": round(sum(h["history_bytes"] for h in got) / max(1, len(got))),
            "largest_payload_bytes": max((h["largest_payload_bytes"] for h in got), default=0),
        },
    }
