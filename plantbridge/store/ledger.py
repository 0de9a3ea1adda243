"""The idempotency ledger: exactly-once in effect for every posting."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from sqlalchemy import Update, or_, select, update

from plantbridge.store.db import Database
from plantbridge.store.engine import upsert
from plantbridge.store.models import LedgerEntry, utcnow

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
    """The ledger, in plain Core statements (one or two per call, in one transaction): it is on every step's path."""

    def __init__(self, db: Database) -> None:
        self.db = db

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
        insert = upsert(self.db.engine, LedgerEntry).values(
            key=key, request_hash=req_hash, workflow_id=workflow_id, step_kind=step_kind, system=system,
            status="started", documents=[], message=None, attempts=1, created_at=now, updated_at=now,
            lease_owner=lease_owner if lease_until is not None else None, lease_until=lease_until,
        ).on_conflict_do_nothing(index_elements=["key"]).returning(LedgerEntry.key)
        async with self.db.engine.begin() as conn:
            if (await conn.execute(insert)).first() is not None:
                return None
            existing = (await conn.execute(
                select(LedgerEntry.request_hash, LedgerEntry.status, LedgerEntry.documents, LedgerEntry.message,
                       LedgerEntry.attempts).where(LedgerEntry.key == key))).first()
            if existing is None:  # pragma: no cover - deleted between the two statements
                raise LookupError(f"ledger key {key} vanished")
            if existing.request_hash != req_hash:
                raise IdempotencyConflict(
                    f"idempotency key {key} was used before for a different request; refusing to post"
                )
            previous = LedgerState(status=existing.status, documents=list(existing.documents or []),
                                   message=existing.message, attempts=existing.attempts)
            if existing.status != "succeeded":  # counted in SQL: concurrent retries lose no count
                await conn.execute(update(LedgerEntry).where(LedgerEntry.key == key)
                                   .values(attempts=LedgerEntry.attempts + 1, updated_at=now))
            return previous

    async def finish(
        self, key: str, status: Literal["succeeded", "rejected"], documents: list[str], message: str | None
    ) -> None:
        """Record the outcome; the row's lease ends with it."""
        async with self.db.engine.begin() as conn:
            result = await conn.execute(
                update(LedgerEntry).where(LedgerEntry.key == key)
                .values(status=status, documents=list(documents), message=message, updated_at=utcnow(),
                        lease_owner=None, lease_until=None))
            if result.rowcount == 0:  # pragma: no cover - begin() always runs first
                raise KeyError(key)

    # -- the lease of an attempt whose connector call is in flight ------------------------------
    async def acquire(self, key: str, owner: str, ttl: timedelta) -> bool:
        """Take the key's lease for `owner` unless another attempt holds a live one.

        One conditional UPDATE, so two attempts racing for it cannot both win. A succeeded key is
        never leased (its documents are the answer).
        """
        now = utcnow()
        return await self._update(
            update(LedgerEntry)
            .where(LedgerEntry.key == key, LedgerEntry.status != "succeeded",
                   or_(LedgerEntry.lease_until.is_(None), LedgerEntry.lease_until < now,
                       LedgerEntry.lease_owner == owner))
            .values(lease_owner=owner, lease_until=now + ttl))

    async def renew(self, key: str, owner: str, ttl: timedelta) -> bool:
        """Extend `owner`'s lease (its heartbeat); False when it no longer holds it."""
        return await self._update(update(LedgerEntry).where(LedgerEntry.key == key, LedgerEntry.lease_owner == owner)
                                  .values(lease_until=utcnow() + ttl))

    async def release(self, key: str, owner: str) -> None:
        """Give the lease up (the attempt ends without an outcome, e.g. cancelled before its call)."""
        await self._update(update(LedgerEntry).where(LedgerEntry.key == key, LedgerEntry.lease_owner == owner)
                           .values(lease_owner=None, lease_until=None))

    async def _update(self, stmt: Update) -> bool:
        async with self.db.engine.begin() as conn:
            return bool((await conn.execute(stmt)).rowcount)

    async def get(self, key: str) -> LedgerState | None:
        async with self.db.engine.connect() as conn:
            row = (await conn.execute(select(LedgerEntry.status, LedgerEntry.documents, LedgerEntry.message,
                                             LedgerEntry.attempts).where(LedgerEntry.key == key))).first()
        if row is None:
            return None
        return LedgerState(row.status, list(row.documents or []), row.message, row.attempts)

    async def entries(self, workflow_id: str | None = None) -> list[LedgerEntry]:
        async with self.db.sessions() as session:
            stmt = select(LedgerEntry).order_by(LedgerEntry.created_at)
            if workflow_id is not None:
                stmt = stmt.where(LedgerEntry.workflow_id == workflow_id)
            return list((await session.scalars(stmt)).all())
