"""The audit trail: every supervisor action, exception and hold, with who and when."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from plantbridge.store.db import Database
from plantbridge.store.engine import upsert
from plantbridge.store.models import AuditRecord, utcnow


class AuditTrail:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def record(
        self,
        *,
        workflow_id: str,
        plant: str,
        order: str,
        actor: str,
        action: str,
        detail: dict[str, Any] | None = None,
        dedup_key: str | None = None,
    ) -> bool:
        """Write one record; False when `dedup_key` was recorded before (a retried write).

        One Core statement (`ON CONFLICT DO NOTHING` on the dedup key): the saga's notes are on its path."""
        stmt = upsert(self.db.engine, AuditRecord).values(
            at=utcnow(), workflow_id=workflow_id, plant=plant, order_number=order, actor=actor, action=action,
            detail=detail or {}, dedup_key=dedup_key,
        ).on_conflict_do_nothing()
        async with self.db.engine.begin() as conn:
            return bool((await conn.execute(stmt)).rowcount)

    async def records(
        self, *, workflow_id: str | None = None, plant: str | None = None, action: str | None = None
    ) -> list[AuditRecord]:
        async with self.db.sessions() as session:
            stmt = select(AuditRecord).order_by(AuditRecord.id)
            if workflow_id is not None:
                stmt = stmt.where(AuditRecord.workflow_id == workflow_id)
            if plant is not None:
                stmt = stmt.where(AuditRecord.plant == plant)
            if action is not None:
                stmt = stmt.where(AuditRecord.action == action)
            return list((await session.scalars(stmt)).all())
