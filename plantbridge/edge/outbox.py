"""Store-and-forward: every plant event goes to a local SQLite outbox first (WAL), then a forwarder
POSTs it to the gateway (``POST {gateway}/v1/plant/events``, ``{"events": [...]}``, in order).

An event leaves the ``pending`` state only when the gateway's 2xx answer holds a per-event answer for
it (matched by ``event_id``, or by position in the gateway's ``{"results": [...]}``):

- ``accepted`` / ``duplicate`` / ``rejected``: final, stored with it;
- a per-event 4xx refusal (``http_status`` 4xx other than 408/429, e.g. 409 ``conflict``, 422, 403):
  counted; after ``gateway.max_refusals`` refusals the event goes to the local ``dead`` state (logged
  as an error, counted in the agent's stats, never sent again until an operator re-queues it with
  ``plantbridge edge-outbox requeue``);
- a per-event 5xx/429/408, or no answer for the event at all (an empty, unparseable or partial 2xx
  body): *not* an acceptance: the event stays ``pending`` and is sent again.

5xx, 429, timeouts and connection errors are retried with capped exponential backoff, waiting at
least the gateway's ``Retry-After``; a 4xx on the whole request is logged loudly and retried only
after the maximum backoff (no spinning). The same SQLite file holds the machines' checkpoints
(counters, open downtime, event sequence) and the telemetry rollups; it runs with
``synchronous=FULL`` so a committed event survives a power loss. The answers are read in answers.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from plantbridge.canonical import PlantEvent
from plantbridge.edge.answers import per_event_answers, retry_after_s
from plantbridge.edge.config import GatewayConfig
from plantbridge.edge.rollups import ROLLUP_SCHEMA

_log = logging.getLogger(__name__)


SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    machine_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at REAL NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    answer TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    answered_at REAL,
    refusals INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (status, seq);
CREATE TABLE IF NOT EXISTS machine_checkpoints (
    machine_id TEXT PRIMARY KEY,
    data TEXT NOT NULL,
    updated_at REAL NOT NULL
);
"""


def open_db(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")  # an event stored here may already be gone from the machine
    db.executescript(SCHEMA + ROLLUP_SCHEMA)
    columns = {row[1] for row in db.execute("PRAGMA table_info(outbox)")}
    if "refusals" not in columns:  # an outbox file written before the dead state existed
        db.execute("ALTER TABLE outbox ADD COLUMN refusals INTEGER NOT NULL DEFAULT 0")
    db.isolation_level = "DEFERRED"  # `with db:` = one transaction
    return db


@dataclass
class OutboxRow:
    seq: int
    event_id: str
    payload: dict[str, Any]


class Outbox:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.wakeup = asyncio.Event()

    def store(self, events: Iterable[PlantEvent], checkpoints: dict[str, dict[str, Any]]) -> int:
        """Insert events (an id already present is kept as it is) and checkpoints in one transaction."""
        now = time.time()
        rows = [
            (
                e.event_id,
                e.equipment or "",
                e.event_type.value,
                json.dumps(e.model_dump(mode="json", exclude_none=True)),
                now,
            )
            for e in events
        ]
        with self.db:
            cur = self.db.executemany(
                "INSERT OR IGNORE INTO outbox (event_id, machine_id, event_type, payload, created_at) "
                "VALUES (?,?,?,?,?)",
                rows,
            )
            inserted = cur.rowcount if cur.rowcount >= 0 else len(rows)
            if checkpoints:
                self.db.executemany(
                    "INSERT OR REPLACE INTO machine_checkpoints (machine_id, data, updated_at) VALUES (?,?,?)",
                    [(mid, json.dumps(data), now) for mid, data in checkpoints.items()],
                )
        if rows:
            self.wakeup.set()
        return inserted

    def checkpoints(self) -> dict[str, dict[str, Any]]:
        return {
            mid: json.loads(data) for mid, data in self.db.execute("SELECT machine_id, data FROM machine_checkpoints")
        }

    def pending(self, limit: int) -> list[OutboxRow]:
        cur = self.db.execute(
            "SELECT seq, event_id, payload FROM outbox WHERE status = 'pending' ORDER BY seq LIMIT ?", (limit,)
        )
        return [OutboxRow(seq, eid, json.loads(payload)) for seq, eid, payload in cur.fetchall()]

    def count(self, status: str = "pending") -> int:
        return int(self.db.execute("SELECT count(*) FROM outbox WHERE status = ?", (status,)).fetchone()[0])

    def mark(self, answers: dict[str, tuple[str, str]]) -> None:
        """event_id -> (final status, answer JSON)."""
        now = time.time()
        with self.db:
            self.db.executemany(
                "UPDATE outbox SET status = ?, answer = ?, answered_at = ?, attempts = attempts + 1 "
                "WHERE event_id = ? AND status = 'pending'",
                [(status, answer, now, eid) for eid, (status, answer) in answers.items()],
            )

    def refused(self, answers: dict[str, str], max_refusals: int) -> list[str]:
        """Count one per-event refusal (event_id -> answer JSON); the events refused `max_refusals` times
        go to ``dead``. Returns those."""
        now = time.time()
        with self.db:
            self.db.executemany(
                "UPDATE outbox SET refusals = refusals + 1, attempts = attempts + 1, answer = ? "
                "WHERE event_id = ? AND status = 'pending'",
                [(answer, eid) for eid, answer in answers.items()],
            )
            marks = ",".join("?" * len(answers))
            dead = [
                str(row[0])
                for row in self.db.execute(
                    f"SELECT event_id FROM outbox WHERE status = 'pending' AND refusals >= ? AND event_id IN ({marks})",
                    (max_refusals, *answers),
                )
            ]
            self.db.executemany(
                "UPDATE outbox SET status = 'dead', answered_at = ? WHERE event_id = ?", [(now, e) for e in dead]
            )
        return dead

    def dead(self) -> list[dict[str, Any]]:
        """The dead events, oldest first: id, machine, type, refusals, last answer, when."""
        cur = self.db.execute(
            "SELECT event_id, machine_id, event_type, refusals, answer, answered_at FROM outbox "
            "WHERE status = 'dead' ORDER BY seq"
        )
        return [
            {"event_id": eid, "machine_id": mid, "event_type": et, "refusals": n, "answer": answer, "dead_at": at}
            for eid, mid, et, n, answer, at in cur.fetchall()
        ]

    def requeue(self, event_ids: Iterable[str] | None = None) -> int:
        """Dead events back to ``pending`` (all of them when `event_ids` is None), refusals reset."""
        sql = "UPDATE outbox SET status = 'pending', refusals = 0, answered_at = NULL WHERE status = 'dead'"
        with self.db:
            if event_ids is None:
                cur = self.db.execute(sql)
            else:
                cur = self.db.executemany(sql + " AND event_id = ?", [(e,) for e in event_ids])
        self.wakeup.set()
        return int(cur.rowcount)

    def counts(self) -> dict[str, int]:
        return {str(st): int(n) for st, n in self.db.execute("SELECT status, count(*) FROM outbox GROUP BY status")}

    def attempted(self, event_ids: list[str]) -> None:
        with self.db:
            self.db.executemany(
                "UPDATE outbox SET attempts = attempts + 1 WHERE event_id = ?", [(e,) for e in event_ids]
            )

    def purge(self, older_than_s: float) -> int:
        with self.db:
            cur = self.db.execute(
                "DELETE FROM outbox WHERE status IN ('accepted', 'duplicate', 'rejected') AND answered_at < ?",
                (time.time() - older_than_s,),
            )
        return cur.rowcount

    def all_events(self) -> list[dict[str, Any]]:
        cur = self.db.execute("SELECT event_id, status, answer, payload FROM outbox ORDER BY seq")
        return [
            {"event_id": eid, "status": status, "answer": answer, "payload": json.loads(payload)}
            for eid, status, answer, payload in cur.fetchall()
        ]


@dataclass
class ForwarderStats:
    sent: int = 0
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    refused: int = 0  # per-event 4xx refusals (each counts towards the dead state)
    dead: int = 0  # events this agent moved to the dead state
    unanswered: int = 0  # events a 2xx answer said nothing (usable) about
    posts: int = 0
    failures: int = 0
    last_error: str | None = None


class Forwarder:
    """Sends the outbox to the gateway in order, one batch in flight at a time."""

    def __init__(self, outbox: Outbox, config: GatewayConfig, api_key: str) -> None:
        self.outbox = outbox
        self.config = config
        self.stats = ForwarderStats()
        self._headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        self._url = f"{config.url}/v1/plant/events"
        self._stopping = False
        self._retry_after = 0.0
        self._stop_event = asyncio.Event()
        # Called with the events the gateway took (accepted or duplicate), in order: the UNS out.
        self.on_forwarded: Callable[[list[dict[str, Any]]], None] | None = None

    async def run(self) -> None:
        backoff = self.config.backoff_initial_s
        last_purge = 0.0
        async with httpx.AsyncClient(timeout=self.config.timeout_s) as http:
            while not self._stopping:
                if time.monotonic() - last_purge > 3600:
                    last_purge = time.monotonic()
                    self.outbox.purge(self.config.retention_s)
                rows = self.outbox.pending(self.config.batch_size)
                if not rows:
                    self.outbox.wakeup.clear()
                    try:
                        await asyncio.wait_for(self.outbox.wakeup.wait(), timeout=1.0)
                    except TimeoutError:
                        pass
                    continue
                self._retry_after = 0.0
                outcome = await self._send(http, rows)
                if outcome == "ok":
                    backoff = self.config.backoff_initial_s
                    continue
                delay = self.config.backoff_max_s if outcome == "client_error" else backoff
                backoff = min(backoff * 2, self.config.backoff_max_s)
                await self._sleep(max(delay, self._retry_after))  # the gateway's Retry-After (429/503) first

    async def _sleep(self, delay: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop_event.wait(), timeout=delay)

    def stop(self) -> None:
        self._stopping = True
        self._stop_event.set()
        self.outbox.wakeup.set()

    async def _send(self, http: httpx.AsyncClient, rows: list[OutboxRow]) -> str:
        ids = [row.event_id for row in rows]
        self.stats.posts += 1
        try:
            response = await http.post(self._url, json={"events": [r.payload for r in rows]}, headers=self._headers)
        except (httpx.TransportError, OSError) as err:
            self._failed(ids, f"gateway unreachable: {type(err).__name__}: {err}", logging.WARNING)
            return "retry"
        status = response.status_code
        if status >= 500 or status == 429 or status == 408:
            self._retry_after = retry_after_s(response, cap=max(self.config.backoff_max_s, 300.0))
            self._failed(ids, f"gateway answered {status}", logging.WARNING)
            return "retry"
        if status >= 400 or status < 200 or status >= 300:
            self._failed(
                ids,
                f"gateway REFUSED the batch with HTTP {status}: {response.text[:500]} — events kept in the outbox; "
                "check the API key, its plant scope and the gateway version",
                logging.ERROR,
            )
            return "client_error"
        answers = per_event_answers(response, ids)
        final = {eid: (a.status, a.raw) for eid, a in answers.items() if a.kind == "final"}
        self.outbox.mark(final)
        if self.on_forwarded is not None:
            taken = [r.payload for r in rows if final.get(r.event_id, ("",))[0] in ("accepted", "duplicate")]
            with contextlib.suppress(Exception):
                self.on_forwarded(taken)
        for answer_status, answer in final.values():
            self.stats.sent += 1
            setattr(self.stats, answer_status, getattr(self.stats, answer_status) + 1)
            if answer_status == "rejected":
                _log.warning("gateway rejected an edge event (final): %s", answer[:500])
        refused = {eid: a.raw for eid, a in answers.items() if a.kind == "refused"}
        if refused:
            self._refused(refused)
        missing = [eid for eid in ids if eid not in final and eid not in refused]
        if missing:
            self.outbox.attempted(missing)
            self.stats.unanswered += sum(1 for eid in missing if eid not in answers)
            self._failed(
                missing,
                f"gateway answered {status} without a final answer for {len(missing)} event(s) (kept pending)",
                logging.WARNING,
            )
        if missing or refused:
            return "retry"
        self.stats.last_error = None
        return "ok"

    def _refused(self, refused: dict[str, str]) -> None:
        self.stats.refused += len(refused)
        dead = self.outbox.refused(refused, self.config.max_refusals)
        self.stats.dead += len(dead)
        for eid in dead:
            _log.error(
                "edge event %s refused %d times by the gateway, moved to the outbox's DEAD state and no longer "
                "sent: %s — fix the cause, then `plantbridge edge-outbox requeue --config FILE %s`",
                eid, self.config.max_refusals, refused[eid][:500], eid,
            )
        for eid in refused.keys() - set(dead):
            _log.warning("gateway refused edge event %s (sent again later): %s", eid, refused[eid][:300])
        self.stats.last_error = f"gateway refused {len(refused)} event(s); {len(dead)} moved to dead"

    def _failed(self, ids: list[str], message: str, level: int) -> None:
        self.stats.failures += 1
        self.stats.last_error = message
        _log.log(level, "%s (%d event(s) waiting, first %s)", message, len(ids), ids[0] if ids else "-")
