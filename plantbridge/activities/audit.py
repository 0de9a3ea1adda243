"""The audit activity: the saga's record of supervisor actions, exceptions and holds."""

from __future__ import annotations

from temporalio import activity

from plantbridge.canonical.saga import AuditNote
from plantbridge.contract import AUDIT_ACTIVITY, AUDIT_BATCH_ACTIVITY
from plantbridge.store.audit import AuditEntry, AuditTrail

__all__ = ["AUDIT_ACTIVITY", "AUDIT_BATCH_ACTIVITY", "AuditActivities"]


class AuditActivities:
    def __init__(self, trail: AuditTrail) -> None:
        self.trail = trail

    @activity.defn(name=AUDIT_ACTIVITY)
    async def record(self, note: AuditNote) -> bool:
        return await self.trail.record(**_entry(note))

    @activity.defn(name=AUDIT_BATCH_ACTIVITY)
    async def record_batch(self, notes: list[AuditNote]) -> int:
        """The notes a saga had waiting, in order (run as a local activity), in one statement; how many were new."""
        return await self.trail.record_many([_entry(note) for note in notes])

    def all(self) -> list[object]:
        return [self.record, self.record_batch]


def _entry(note: AuditNote) -> AuditEntry:
    return AuditEntry(workflow_id=note.workflow_id, plant=note.plant, order=note.order, actor=note.actor,
                      action=note.action, detail=dict(note.detail), dedup_key=note.dedup_key)
