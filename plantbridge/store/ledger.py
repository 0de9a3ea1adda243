"""The idempotency ledger: exactly-once in effect for every posting."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from sqlalchemy import Table, Update, bindparam, or_, select, update

from plantbridge.store.db import Database
from plantbridge.store.engine import upsert
from plantbridge.store.models import LedgerEntry, utcnow

LEDGER: Table = LedgerEntry.__table__  # type: ignore[assignment]

LedgerStatus = Literal["started", "succeeded", "rejected"]


class IdempotencyConflict(Exception):
    """The same key arrived with a different request: a bug upstream, never posted."""


@dataclass(frozen=True)
class LedgerState:
    status: LedgerStatus
    documents: list[str]
    message: str | None
    attempts: int


def request_hash(payload: Any) -> str:
    data = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(data.encode()).hexdigest()


class Ledger:
    """The ledger, in plain Core statements (one or two per call, in one transaction): it is on every step's path.

    The statements of the step path are built once per ledger and executed with bind parameters, on the
    table (not the mapped class): no statement construction, ORM coercion or cache-key walk per call.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        t = LEDGER
        # Columns named in the parameters are the INSERT's VALUES and the UPDATE's SET.
        self._insert = (upsert(db.engine, t).on_conflict_do_nothing(index_elements=[t.c.key])
                        .returning(t.c.key))
        self._known = select(t.c.request_hash, t.c.status, t.c.documents, t.c.message,
                             t.c.attempts).where(t.c.key == bindparam("k"))
        self._count_attempt = (update(t).where(t.c.key == bindparam("k"))
                               .values(attempts=t.c.attempts + 1, updated_at=bindparam("now")))
        self._finish = update(t).where(t.c.key == bindparam("k"))
        held_by_owner = (t.c.key == bindparam("k")) & (t.c.lease_owner == bindparam("owner"))
        self._acquire = (update(t).where(t.c.key == bindparam("k"), t.c.status != "succeeded",
                                         or_(t.c.lease_until.is_(None), t.c.lease_until < bindparam("now"),
                                             t.c.lease_owner == bindparam("owner")))
                         .values(lease_owner=bindparam("owner"), lease_until=bindparam("until")))
        self._renew = update(t).where(held_by_owner).values(lease_until=bindparam("until"))
        self._release = update(t).where(held_by_owner).values(lease_owner=None, lease_until=None)

    async def begin(
        self, key: str, req_hash: str, *, workflow_id: str, step_kind: str, system: str,
        lease_owner: str | None = None, lease_ttl: timedelta | None = None,
    ) -> LedgerState | None:
        """Record the intent to post. Returns the earlier state when the key is known.

        With `lease_owner` (and `lease_ttl`), a new row is written already leased to that owner (one
        statement: the common case of a step's first attempt); a known key is left to `acquire`.
        """
        now = utcnow()
        lease_until = now + lease_ttl if lease_owner is not None and lease_ttl is not None else None
        row: dict[str, Any] = {
            "key": key, "request_hash": req_hash, "workflow_id": workflow_id, "step_kind": step_kind,
            "system": system, "status": "started", "documents": [], "message": None, "attempts": 1,
            "created_at": now, "updated_at": now,
            "lease_owner": lease_owner if lease_until is not None else None, "lease_until": lease_until,
        }
        async with self.db.engine.begin() as conn:
            if (await conn.execute(self._insert, row)).first() is not None:
                return None
            existing = (await conn.execute(self._known, {"k": key})).first()
            if existing is None:  # pragma: no cover - deleted between the two statements
                raise LookupError(f"ledger key {key} vanished")
            if existing.request_hash != req_hash:
                raise IdempotencyConflict(
                    f"idempotency key {key} was used before for a different request; refusing to post"
                )
            previous = LedgerState(status=existing.status, documents=list(existing.documents or []),
                                   message=existing.message, attempts=existing.attempts)
            if existing.status != "succeeded":  # counted in SQL: concurrent retries lose no count
                await conn.execute(self._count_attempt, {"k": key, "now": now})
            return previous

    async def finish(
        self, key: str, status: Literal["succeeded", "rejected"], documents: list[str], message: str | None
    ) -> None:
        """Record the outcome; the row's lease ends with it."""
        async with self.db.engine.begin() as conn:
            result = await conn.execute(self._finish, {
                "k": key, "status": status, "documents": list(documents), "message": message,
                "updated_at": utcnow(), "lease_owner": None, "lease_until": None,
            })
            if result.rowcount == 0:  # pragma: no cover - begin() always runs first
                raise KeyError(key)

    # -- the lease of an attempt whose connector call is in flight ------------------------------
    async def acquire(self, key: str, owner: str, ttl: timedelta) -> bool:
        """Take the key's lease for `owner` unless another attempt holds a live one.

        One conditional UPDATE, so two attempts racing for it cannot both win. A succeeded key is
        never leased (its documents are the answer).
        """
        now = utcnow()
        return await self._update(self._acquire, {"k": key, "owner": owner, "now": now, "until": now + ttl})

    async def renew(self, key: str, owner: str, ttl: timedelta) -> bool:
        """Extend `owner`'s lease (its heartbeat); False when it no longer holds it."""
        return await self._update(self._renew, {"k": key, "owner": owner, "until": utcnow() + ttl})

    async def release(self, key: str, owner: str) -> None:
        """Give the lease up (the attempt ends without an outcome, e.g. cancelled before its call)."""
        await self._update(self._release, {"k": key, "owner": owner})

    async def _update(self, stmt: Update, params: dict[str, Any]) -> bool:
        async with self.db.engine.begin() as conn:
            return bool((await conn.execute(stmt, params)).rowcount)

    async def get(self, key: str) -> LedgerState | None:
        async with self.db.engine.connect() as conn:
            row = (await conn.execute(self._known, {"k": key})).first()
        if row is None:
            return None
        return LedgerState(row.status, list(row.documents or []), row.message, row.attempts)

    async def entries(self, workflow_id: str | None = None) -> list[LedgerEntry]:
        async with self.db.sessions() as session:
            stmt = select(LedgerEntry).order_by(LedgerEntry.created_at)
            if workflow_id is not None:
                stmt = stmt.where(LedgerEntry.workflow_id == workflow_id)
            return list((await session.scalars(stmt)).all())
