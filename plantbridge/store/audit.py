"""The audit trail: every supervisor action, exception and hold, with who and when."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any, TypedDict

from sqlalchemy import Table, select

from plantbridge.store.db import Database
from plantbridge.store.engine import upsert
from plantbridge.store.models import AuditRecord, utcnow

AUDIT: Table = AuditRecord.__table__  # type: ignore[assignment]


class AuditEntry(TypedDict):
    """One record to write (`AuditTrail.record_many`)."""

    workflow_id: str
    plant: str
    order: str
    actor: str
    action: str
    detail: dict[str, Any] | None
    dedup_key: str | None


class AuditTrail:
    def __init__(self, db: Database) -> None:
        self.db = db

    # Built once (on first use: an app built only to render its schema has no store), executed with the rows
    # as parameters: the saga's notes are on its path.
    @cached_property
    def _insert(self) -> Any:
        return upsert(self.db.engine, AUDIT).on_conflict_do_nothing()

    @cached_property
    def _insert_returning(self) -> Any:
        return self._insert.returning(AUDIT.c.id)

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

        One Core statement (`ON CONFLICT DO NOTHING` on the dedup key)."""
        row = _row(AuditEntry(workflow_id=workflow_id, plant=plant, order=order, actor=actor, action=action,
                              detail=detail, dedup_key=dedup_key))
        async with self.db.engine.begin() as conn:
            return bool((await conn.execute(self._insert, row)).rowcount)

    async def record_many(self, entries: Sequence[AuditEntry]) -> int:
        """Write the records in order, in one transaction and one statement (several VALUES rows); how many
        were new (a `dedup_key` recorded before, or twice in `entries`, writes nothing)."""
        if not entries:
            return 0
        rows = [_row(e) for e in entries]
        async with self.db.engine.begin() as conn:
            # RETURNING counts the rows written on both dialects (an executemany's rowcount may not).
            return len((await conn.execute(self._insert_returning, rows)).all())

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


def _row(entry: AuditEntry) -> dict[str, Any]:
    return {
        "at": utcnow(), "workflow_id": entry["workflow_id"], "plant": entry["plant"], "order_number": entry["order"],
        "actor": entry["actor"], "action": entry["action"], "detail": entry["detail"] or {},
        "dedup_key": entry["dedup_key"],
    }
