"""Where a shift summary's facts come from: the plant events the sagas accepted.

The gateway's inbox keeps every plant event raw with the saga's answer. An event answered
`accepted` is what the order's saga took in (a duplicate is answered `duplicate`, a refused one
`rejected`, so neither counts twice nor wrongly). The raw body carries the plant's own codes; it is
translated with the plant file's cross-references exactly as the gateway did.

`facts_from_events` is pure (events -> confirmations and downtime intervals); `accepted_events`
reads the store.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal

from pydantic import ValidationError
from sqlalchemy import select

from plantbridge.batch.summary import Confirmation, Downtime
from plantbridge.canonical.events import EventType, PlantEvent
from plantbridge.canonical.plant_config import PlantConfig
from plantbridge.store.db import Database
from plantbridge.store.inbox import InboxMessage

UNKNOWN_WORK_CENTER = "UNASSIGNED"
# Edge agents buffer: an event may reach the gateway this long after it happened.
LATE_ARRIVAL = timedelta(days=2)


def facts_from_events(events: list[PlantEvent]) -> tuple[list[Confirmation], list[Downtime]]:
    """Confirmations, and downtime intervals paired per work center and equipment (start..end)."""
    events = sorted(events, key=lambda e: (e.occurred_at, e.event_id))
    # A confirmation without a work center takes the one its operation started on.
    op_centers = {(e.order, e.operation): e.work_center for e in events if e.operation and e.work_center}
    confs: list[Confirmation] = []
    downs: list[Downtime] = []
    open_: dict[tuple[str, str | None], list[PlantEvent]] = defaultdict(list)
    for e in events:
        if e.event_type is EventType.OPERATION_CONFIRMED and e.yield_qty is not None and e.operation:
            confs.append(Confirmation(
                event_id=e.event_id, order=e.order, operation=e.operation,
                work_center=e.work_center or op_centers.get((e.order, e.operation)) or UNKNOWN_WORK_CENTER,
                at=e.occurred_at, yield_qty=e.yield_qty.quantity,
                scrap_qty=e.scrap_qty.quantity if e.scrap_qty else Decimal(0),
                rework_qty=e.rework_qty.quantity if e.rework_qty else Decimal(0), uom=e.yield_qty.uom,
                labor_min=e.activities.labor_min if e.activities else Decimal(0), final=e.final, reason=e.reason,
            ))
        elif e.event_type is EventType.DOWNTIME_STARTED and e.work_center:
            open_[(e.work_center, e.equipment)].append(e)
        elif e.event_type is EventType.DOWNTIME_ENDED and e.work_center:
            started = open_[(e.work_center, e.equipment)]
            if started:
                s = started.pop(0)
                downs.append(Downtime(work_center=e.work_center, start=s.occurred_at, end=e.occurred_at,
                                      reason=s.reason or e.reason or "UNSPECIFIED", equipment=e.equipment))
    for (wc, equipment), starts in sorted(open_.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        downs.extend(Downtime(work_center=wc, start=s.occurred_at, end=None, reason=s.reason or "UNSPECIFIED",
                              equipment=equipment) for s in starts)
    return confs, downs


def accepted(answer: object) -> bool:
    body = answer.get("body") if isinstance(answer, dict) else None
    return isinstance(body, dict) and body.get("status") == "accepted"


def parse_inbox_body(cfg: PlantConfig, body: bytes) -> PlantEvent | None:
    try:
        raw = json.loads(body)
        return PlantEvent.model_validate(cfg.translate_event(raw)) if isinstance(raw, dict) else None
    except (ValueError, ValidationError):
        return None


async def accepted_events(db: Database, cfg: PlantConfig, start: datetime, end: datetime) -> list[PlantEvent]:
    """Accepted plant events of the plant that happened in [start - LATE_ARRIVAL, end).

    Read back to two days before the window so a downtime that started earlier is paired; events
    are selected by when the gateway received them (at or after the window's look-back start)."""
    since = start - LATE_ARRIVAL
    async with db.sessions() as session:
        stmt = (select(InboxMessage)
                .where(InboxMessage.plant == cfg.plant, InboxMessage.status == "processed",
                       InboxMessage.channel == "plant_event", InboxMessage.received_at >= since)
                .order_by(InboxMessage.id))
        rows = list((await session.scalars(stmt)).all())
    found: dict[str, PlantEvent] = {}
    for row in rows:
        if not accepted(row.answer):
            continue
        event = parse_inbox_body(cfg, row.body)
        if event is not None and since <= event.occurred_at < end:
            found.setdefault(event.event_id, event)
    return list(found.values())
