"""The idempotency ledger: exactly-once in effect for every posting."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from plantbridge.store.db import Database
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
    def __init__(self, db: Database) -> None:
        self.db = db

    async def begin(
        self, key: str, req_hash: str, *, workflow_id: str, step_kind: str, system: str
    ) -> LedgerState | None:
        """Record the intent to post. Returns the earlier state when the key is known."""
        async with self.db.sessions() as session:
            existing = await session.get(LedgerEntry, key)
            if existing is None:
                session.add(
                    LedgerEntry(
                        key=key,
                        request_hash=req_hash,
                        workflow_id=workflow_id,
                        step_kind=step_kind,
                        system=system,
                        status="started",
                        documents=[],
                    )
                )
                try:
                    await session.commit()
                    return None
                except IntegrityError:
                    await session.rollback()
                    existing = await session.get(LedgerEntry, key)
                    if existing is None:  # pragma: no cover - deleted between the two reads
                        raise
            if existing.request_hash != req_hash:
                raise IdempotencyConflict(
                    f"idempotency key {key} was used before for a different request; refusing to post"
                )
            previous = LedgerState(
                status=existing.status,  # type: ignore[arg-type]
                documents=list(existing.documents or []),
                message=existing.message,
                attempts=existing.attempts,
            )
            if existing.status != "succeeded":  # counted in SQL: concurrent retries lose no count
                await session.execute(update(LedgerEntry).where(LedgerEntry.key == key)
                                      .values(attempts=LedgerEntry.attempts + 1, updated_at=utcnow()))
                await session.commit()
            return previous

    async def finish(
        self, key: str, status: Literal["succeeded", "rejected"], documents: list[str], message: str | None
    ) -> None:
        async with self.db.sessions() as session:
            entry = await session.get(LedgerEntry, key)
            if entry is None:  # pragma: no cover - begin() always runs first
                raise KeyError(key)
            entry.status = status
            entry.documents = list(documents)
            entry.message = message
            entry.updated_at = utcnow()
            entry.lease_owner = None
            entry.lease_until = None
            await session.commit()

    # -- the lease of an attempt whose connector call is in flight ------------------------------
    async def acquire(self, key: str, owner: str, ttl: timedelta) -> bool:
        """Take the key's lease for `owner` unless another attempt holds a live one.

        One conditional UPDATE, so two attempts racing for it cannot both win. A succeeded key is
        never leased (its documents are the answer).
        """
        now = utcnow()
        async with self.db.sessions() as session:
            result = await session.execute(
                update(LedgerEntry)
                .where(LedgerEntry.key == key, LedgerEntry.status != "succeeded",
                       or_(LedgerEntry.lease_until.is_(None), LedgerEntry.lease_until < now,
                           LedgerEntry.lease_owner == owner))
                .values(lease_owner=owner, lease_until=now + ttl)
            )
            await session.commit()
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def renew(self, key: str, owner: str, ttl: timedelta) -> bool:
        """Extend `owner`'s lease (its heartbeat); False when it no longer holds it."""
        async with self.db.sessions() as session:
            result = await session.execute(
                update(LedgerEntry).where(LedgerEntry.key == key, LedgerEntry.lease_owner == owner)
                .values(lease_until=utcnow() + ttl)
            )
            await session.commit()
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def release(self, key: str, owner: str) -> None:
        """Give the lease up (the attempt ends without an outcome, e.g. cancelled before its call)."""
        async with self.db.sessions() as session:
            await session.execute(
                update(LedgerEntry).where(LedgerEntry.key == key, LedgerEntry.lease_owner == owner)
                .values(lease_owner=None, lease_until=None)
            )
            await session.commit()

    async def get(self, key: str) -> LedgerState | None:
        async with self.db.sessions() as session:
            entry = await session.get(LedgerEntry, key)
            if entry is None:
                return None
            return LedgerState(entry.status, list(entry.documents or []), entry.message, entry.attempts)  # type: ignore[arg-type]

    async def entries(self, workflow_id: str | None = None) -> list[LedgerEntry]:
        async with self.db.sessions() as session:
            stmt = select(LedgerEntry).order_by(LedgerEntry.created_at)
            if workflow_id is not None:
                stmt = stmt.where(LedgerEntry.workflow_id == workflow_id)
            return list((await session.scalars(stmt)).all())
