"""What `plantbridge chaos` counts once the storm is over: orders finished, events lost, postings doubled
or unkeyed in the ERPs' own data.

Lost: a plant event the gateway answered 2xx (the senders' own records of the answers: the MES outbox and
the edge agents' outboxes keep the status and body of every answer) that its order's saga has not seen
(`seen_event_ids` of the saga's state, asked through Temporal) and that was not deliberately refused (an
answer `rejected`: the saga's decision).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client

from plantbridge.client import order_summary
from plantbridge_devtools.demo_odoo import count_odoo
from plantbridge_devtools.erp_audit import Audit, audit_sap
from plantbridge_devtools.odoo_seed import OdooApi


@dataclass
class Answered:
    event_id: str
    plant: str
    order: str
    status: str  # the saga's answer: accepted, duplicate, rejected (or the waiting inbox's accepted)


@dataclass
class Lost:
    answered: int = 0  # events answered 2xx
    refused: int = 0  # of those, rejected by the saga on purpose
    lost: list[str] = field(default_factory=list)  # "plant/order event_id"
    unverified: list[str] = field(default_factory=list)  # its saga could not be asked
    by_status: Counter[str] = field(default_factory=Counter)


def answered_2xx(outbox: list[dict[str, Any]]) -> list[Answered]:
    """The events of the MES outbox the gateway answered 2xx, with the answer's status."""
    out = []
    for item in outbox:
        code = item.get("http_status")
        if item.get("status") != "delivered" or not isinstance(code, int) or not 200 <= code < 300:
            continue
        event, answer = item.get("event") or {}, item.get("response") or {}
        out.append(Answered(str(item["event_id"]), str(event.get("plant")), str(event.get("order")),
                            str(answer.get("status") if isinstance(answer, dict) else "")))
    return out


def edge_answered_2xx(outbox_db: Path) -> list[Answered]:
    """The events of an edge agent's outbox (SQLite) the gateway answered 2xx."""
    out = []
    with contextlib.closing(sqlite3.connect(f"file:{outbox_db}?mode=ro", uri=True)) as db:
        for event_id, payload, answer in db.execute("SELECT event_id, payload, answer FROM outbox "
                                                    "WHERE answer IS NOT NULL ORDER BY seq"):
            got, event = json.loads(answer), json.loads(payload)
            if isinstance(got, dict) and 200 <= int(got.get("http_status") or 0) < 300:
                out.append(Answered(str(event_id), str(event.get("plant")), str(event.get("order")),
                                    str(got.get("status"))))
    return out


def lost_events(answers: list[Answered], seen: dict[tuple[str, str], set[str]],
                unasked: frozenset[tuple[str, str]] = frozenset()) -> Lost:
    """`seen`: (plant, order) -> the event ids its saga has seen (no entry: no saga); `unasked`: orders whose
    saga could not be asked (their events are `unverified`, not lost)."""
    out = Lost(answered=len(answers))
    for a in answers:
        out.by_status[a.status] += 1
        if a.status == "rejected":
            out.refused += 1
        elif (a.plant, a.order) in unasked:
            out.unverified.append(f"{a.plant}/{a.order} {a.event_id}")
        elif a.event_id not in seen.get((a.plant, a.order), set()):
            out.lost.append(f"{a.plant}/{a.order} {a.event_id}")
    return out


async def sagas_seen(client: Client, orders: set[tuple[str, str]], *, tries: int = 5
                     ) -> tuple[dict[tuple[str, str], set[str]], dict[str, str]]:
    """(plant, order) -> the event ids its saga has seen; and the orders whose saga could not be asked
    (after `tries`), with the error: those are "unverified", never counted as seen."""
    seen: dict[tuple[str, str], set[str]] = {}
    errors: dict[str, str] = {}
    for plant, order in sorted(orders):
        for attempt in range(tries):
            try:
                state = await order_summary(client, plant, order, timeout=timedelta(seconds=30))
            except Exception as err:  # e.g. the query timed out on the shared CPU: ask again
                errors[f"{plant}/{order}"] = f"{type(err).__name__}: {err}"[:300]
                await asyncio.sleep(2.0 * (attempt + 1))
                continue
            seen[plant, order] = set(state.seen_event_ids)
            errors.pop(f"{plant}/{order}", None)
            break
    return seen, errors


async def audit_erps(sap_state: dict[str, Any], odoo: OdooApi | None, odoo_orders: dict[int, str]) -> Audit:
    """Doubled and unkeyed postings in SAP's and Odoo's own data."""
    audit = audit_sap(sap_state)
    if odoo is not None and odoo_orders:
        count = await count_odoo(odoo, odoo_orders)
        audit = audit.add(Audit(Counter({f"Odoo {k}": n for k, n in count.records.items()}),
                                [f"Odoo {r} has two external ids" for r in count.doubled],
                                [f"Odoo {r}" for r in count.unbound]))
    return audit
