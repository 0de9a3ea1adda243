"""Deterministic event ids: ``edge{plant}-{machine}-{kind}-{source timestamp ms}-{seq}``.

``seq`` is the machine's event sequence number, stored in the same SQLite transaction as the event
in the outbox (and the machine's checkpoint). An event in the outbox keeps its id for every resend,
so a resend after a crash gets ``duplicate`` from the saga, never a second posting; an event lost
before its commit is rebuilt with the same sequence number after a restart. Ids longer than the
64 characters the wire format allows use a 10-character hash of the machine id instead.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from plantbridge.canonical import EventType

KIND_CODES: dict[EventType, str] = {
    EventType.DOWNTIME_STARTED: "ds",
    EventType.DOWNTIME_ENDED: "de",
    EventType.OPERATION_CONFIRMED: "oc",
}

MAX_ID = 64


def event_id(plant: str, machine: str, kind: EventType, occurred_at: datetime, seq: int) -> str:
    millis = int(occurred_at.timestamp() * 1000)
    code = KIND_CODES.get(kind, kind.value[:4])
    ident = f"edge{plant}-{machine}-{code}-{millis}-{seq}"
    if len(ident) > MAX_ID:
        short = hashlib.sha1(machine.encode("utf-8")).hexdigest()[:10]
        ident = f"edge{plant}-{short}-{code}-{millis}-{seq}"
    return ident
