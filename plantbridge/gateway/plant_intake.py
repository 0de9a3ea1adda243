"""`POST /v1/plant/events` on its hot path: check in memory, then store and look up in one go.

A plant event (or each event of a batch) is parsed and checked (schema, plant, ownership, clock) before
it is stored: nothing has left the process yet, so the inbox's promise holds (every message is committed
before it is handed over). A checked event is then stored with its plant, order and event id in one
statement that also answers the 409 look-up (the first earlier taken message with that event id); a batch
and its events are stored in one transaction, and their outcomes written in one more. Whatever does not
check out takes the general path (stored raw, then refused as a dead letter: `Intake.plant_message`).
"""

from __future__ import annotations

import json
from typing import Any

from plantbridge.canonical.events import PlantEvent
from plantbridge.gateway.auth import Caller
from plantbridge.gateway.bodies import parse_json
from plantbridge.gateway.errors import ApiError
from plantbridge.gateway.inbox import MAX_BATCH, PLANT_EVENT, Intake, Outcome
from plantbridge.store.inbox import TAKEN, Finish, Hints


def hints(event: PlantEvent) -> Hints:
    return Hints(event.plant, event.order, event.event_id)


async def receive_plant_message(intake: Intake, raw: bytes, content_type: str, caller: Caller) -> tuple[int, Outcome]:
    """Store and handle one plant event or a batch; the inbox id and the answer."""
    try:
        data = parse_json(raw)
    except ApiError:
        data = None
    if isinstance(data, dict) and "events" not in data:
        event = intake.admit(data, caller)
        if isinstance(event, PlantEvent):
            msg_id, earlier = await intake.inbox.receive_event(PLANT_EVENT, raw, hints(event),
                                                               content_type=content_type, key_id=caller.key_id)
            return msg_id, await intake.checked(msg_id, event, data, earlier)
    elif isinstance(data, dict) and list(data) == ["events"] and isinstance(data["events"], list) \
            and 0 < len(data["events"]) <= MAX_BATCH:
        return await _batch(intake, raw, data["events"], content_type, caller)
    msg_id = await intake.inbox.receive(PLANT_EVENT, raw, content_type=content_type, key_id=caller.key_id)
    return msg_id, await intake.plant_message(msg_id, raw, caller)


async def _batch(intake: Intake, raw: bytes, events: list[Any], content_type: str,
                 caller: Caller) -> tuple[int, Outcome]:
    """A batch: stored with its events in one transaction, delivered in order, outcomes written in one more."""
    admitted = [intake.admit(obj, caller, ["events", i]) for i, obj in enumerate(events)]
    children = [(json.dumps(obj, ensure_ascii=False).encode(), hints(a) if isinstance(a, PlantEvent) else None)
                for obj, a in zip(events, admitted, strict=True)]
    parent_id, ids, earlier = await intake.inbox.receive_batch(PLANT_EVENT, raw, children,
                                                               content_type=content_type, key_id=caller.key_id)
    results: list[dict[str, Any]] = []
    with intake.finishes_held() as held:
        for child_id, obj, event in zip(ids, events, admitted, strict=True):
            if isinstance(event, ApiError):
                out = await intake.dead(child_id, event, obj)
            else:
                key = hints(event)
                out = await intake.checked(child_id, event, obj, earlier.get(key))
                # A later event of this batch with the same id compares with this one once it was taken.
                if key not in earlier and _last_status(held, child_id) in TAKEN:
                    earlier[key] = child_id
            results.append({"http_status": out.http_status, **out.body})
    answer = {"results": results}
    held.append(Finish(parent_id, "processed", {"answer": {"http_status": 200, "body": answer},
                                                "reason": f"batch of {len(results)} events"}))
    await intake.inbox.finish_many(held)
    return parent_id, Outcome(200, answer)


def _last_status(held: list[Finish], msg_id: int) -> str | None:
    return next((f.status for f in reversed(held) if f.msg_id == msg_id), None)
