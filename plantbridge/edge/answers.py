"""The gateway's answer to a batch of edge events, read per event (see outbox.py for what each kind means)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

FINAL_STATUSES = frozenset({"accepted", "duplicate", "rejected"})


def retry_after_s(response: httpx.Response, *, cap: float) -> float:
    """The gateway's `Retry-After` in seconds (0 when absent or not a number of seconds), at most `cap`."""
    try:
        return min(max(float(response.headers.get("retry-after", "0")), 0.0), cap)
    except ValueError:
        return 0.0


@dataclass(frozen=True)
class EventAnswer:
    kind: str  # "final" (accepted/duplicate/rejected), "refused" (a per-event 4xx) or "transient"
    status: str
    raw: str


def _transient_status(http_status: int) -> bool:
    return http_status >= 500 or http_status in (408, 429)


def per_event_answers(response: httpx.Response, ids: list[str]) -> dict[str, EventAnswer]:
    """The per-event answers in a 2xx: a list, ``{"results"|"acknowledgements"|"acks"|"events": [...]}``
    or one acknowledgement. An item names its event by ``event_id``; one without (the gateway's answer
    for an event it refused before reading its id) is matched by position when the list has one item
    per event sent. An event without a usable answer is absent from the result: not an acceptance."""
    try:
        body = response.json()
    except ValueError:
        return {}
    items: list[Any] | None = None
    if isinstance(body, list):
        items = body
    elif isinstance(body, dict):
        for key in ("results", "acknowledgements", "acks", "events"):
            if isinstance(body.get(key), list):
                items = body[key]
                break
        if items is None and "event_id" in body and "status" in body:
            items = [body]
    if not items:
        return {}
    positional = len(items) == len(ids)
    wanted = set(ids)
    answers: dict[str, EventAnswer] = {}
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            continue
        eid = item.get("event_id")
        if not isinstance(eid, str):
            eid = ids[index] if positional else None
        if eid is None or eid not in wanted:
            continue
        raw = json.dumps(item)[:4000]
        status, http_status = item.get("status"), item.get("http_status")
        if isinstance(status, str) and status in FINAL_STATUSES:
            answers[eid] = EventAnswer("final", status, raw)
        elif isinstance(http_status, int) and not isinstance(http_status, bool) and 400 <= http_status < 500 \
                and not _transient_status(http_status):
            answers[eid] = EventAnswer("refused", str(http_status), raw)
        elif isinstance(http_status, int) and _transient_status(http_status):
            answers[eid] = EventAnswer("transient", str(http_status), raw)
    return answers
