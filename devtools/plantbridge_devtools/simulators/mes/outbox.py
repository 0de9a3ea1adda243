"""The MES's outbound plant events: an outbox table and one delivery task.

Events are written to the ``outbox`` table in the same transaction as the change that caused them,
numbered per plant (``event_id`` = ``mes{plant}-{seq:06d}``). One background task delivers them
one at a time, oldest first, as ``POST <outbound URL>`` with ``Authorization: Bearer <token>``:

- a 2xx answer marks the event ``delivered`` and stores the receiver's JSON answer with it;
- no answer, 408, 425, 429 or 5xx: the same event is retried with exponential backoff
  (``retry_initial_s`` doubling up to ``retry_max_s``), later events wait behind it, so the receiver
  sees them in order and each one until it is accepted;
- another 4xx marks it ``rejected`` (answer kept) and delivery moves on; ``POST /admin/outbox/retry``
  puts rejected events back in the queue.

Without an outbound URL events wait in the outbox; they go out once one is set (``PUT /admin/outbound``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from typing import Any

import httpx

from plantbridge_devtools.simulators.common.state import SqliteState
from plantbridge_devtools.simulators.common.util import iso, now

log = logging.getLogger(__name__)

OUTBOX_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    order_no TEXT,
    body TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    http_status INTEGER,
    last_error TEXT NOT NULL DEFAULT '',
    response TEXT,
    created_at TEXT NOT NULL,
    delivered_at TEXT
);
"""
RETRYABLE = {408, 425, 429}


@dataclass
class Outbound:
    url: str | None = None
    token: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"url": self.url, "token_set": bool(self.token)}


def enqueue(state: SqliteState, plant: str, event: dict[str, Any]) -> dict[str, Any]:
    """Number ``event`` and store it in the outbox (call inside the change's transaction)."""
    seq = state.next_number(f"event:{plant}")
    event = {"event_id": f"mes{plant}-{seq:06d}", **event}
    with state.lock:
        state.db.execute(
            "INSERT INTO outbox (event_id, order_no, body, created_at) VALUES (?, ?, ?, ?)",
            (event["event_id"], event.get("order"), json.dumps(event), iso(now())),
        )
    return event


def _row(row: tuple[Any, ...]) -> dict[str, Any]:
    seq, event_id, order_no, body, status, attempts, http_status, last_error, response, created, delivered = row
    return {
        "seq": seq,
        "event_id": event_id,
        "order": order_no,
        "event": json.loads(body),
        "status": status,
        "attempts": attempts,
        "http_status": http_status,
        "last_error": last_error,
        "response": json.loads(response) if response else None,
        "created_at": created,
        "delivered_at": delivered,
    }


_COLUMNS = (
    "seq, event_id, order_no, body, status, attempts, http_status, last_error, response, created_at, delivered_at"
)


def list_outbox(state: SqliteState, status: str | None = None, order: str | None = None) -> list[dict[str, Any]]:
    sql = f"SELECT {_COLUMNS} FROM outbox WHERE 1=1"
    args: list[Any] = []
    if status:
        sql += " AND status=?"
        args.append(status)
    if order:
        sql += " AND order_no=?"
        args.append(order)
    with state.lock:
        rows = state.db.execute(sql + " ORDER BY seq", args).fetchall()
    return [_row(r) for r in rows]


def find_event(state: SqliteState, event_id: str) -> dict[str, Any] | None:
    with state.lock:
        row = state.db.execute(f"SELECT {_COLUMNS} FROM outbox WHERE event_id=?", (event_id,)).fetchone()
    return _row(row) if row else None


class Dispatcher:
    """Delivers the outbox in order; runs as one asyncio task inside the app's event loop."""

    def __init__(
        self, state: SqliteState, outbound: Outbound, *, retry_initial_s: float = 0.2, retry_max_s: float = 5.0,
        timeout_s: float = 5.0,
    ) -> None:
        self.state = state
        self.outbound = outbound
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.timeout_s = timeout_s
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None

    def start(self) -> None:
        self._wake = asyncio.Event()
        self._client = httpx.AsyncClient(timeout=self.timeout_s)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="mes-outbox")

    def notify(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._client is not None:
            await self._client.aclose()
        self._task = None
        self._client = None

    def _next(self) -> tuple[int, str, str] | None:
        with self.state.lock:
            row = self.state.db.execute(
                "SELECT seq, event_id, body FROM outbox WHERE status='pending' ORDER BY seq LIMIT 1"
            ).fetchone()
        return (int(row[0]), str(row[1]), str(row[2])) if row else None

    def _record(self, seq: int, status: str, http_status: int | None, error: str, response: Any) -> None:
        with self.state.lock:
            self.state.db.execute(
                "UPDATE outbox SET status=?, attempts=attempts+1, http_status=?, last_error=?, "
                "response=COALESCE(?, response), delivered_at=? WHERE seq=?",
                (
                    status,
                    http_status,
                    error,
                    json.dumps(response) if response is not None else None,
                    iso(now()) if status == "delivered" else None,
                    seq,
                ),
            )

    async def _run(self) -> None:
        assert self._wake is not None
        backoff = self.retry_initial_s
        while True:
            item = self._next() if self.outbound.url else None
            if item is None:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=0.5)
                continue
            try:
                delivered = await self._deliver(*item)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # never let the task die
                log.exception("outbox delivery of %s failed", item[1])
                self._record(item[0], "pending", None, f"{type(exc).__name__}: {exc}", None)
                delivered = False
            if delivered:
                backoff = self.retry_initial_s
                continue
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.retry_max_s)

    async def _deliver(self, seq: int, event_id: str, body: str) -> bool:
        """True when the event is settled (delivered or rejected), False to retry it."""
        assert self._client is not None and self.outbound.url
        headers = {"Content-Type": "application/json"}
        if self.outbound.token:
            headers["Authorization"] = f"Bearer {self.outbound.token}"
        try:
            response = await self._client.post(self.outbound.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            self._record(seq, "pending", None, f"{type(exc).__name__}: {exc}", None)
            return False
        try:
            answer: Any = response.json()
        except ValueError:
            answer = {"text": response.text[:2000]} if response.text else None
        code = response.status_code
        if code < 300:
            self._record(seq, "delivered", code, "", answer)
            return True
        if code in RETRYABLE or code >= 500:
            self._record(seq, "pending", code, f"HTTP {code}: {response.text[:200]}", answer)
            return False
        log.warning("event %s rejected by %s: HTTP %s %s", event_id, self.outbound.url, code, response.text[:200])
        self._record(seq, "rejected", code, f"HTTP {code}: {response.text[:200]}", answer)
        return True
