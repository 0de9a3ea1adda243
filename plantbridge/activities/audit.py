"""The audit activity: the saga's record of supervisor actions, exceptions and holds."""

from __future__ import annotations

from temporalio import activity

from plantbridge.canonical.saga import AuditNote
from plantbridge.contract import AUDIT_ACTIVITY
from plantbridge.store.audit import AuditTrail

__all__ = ["AUDIT_ACTIVITY", "AuditActivities"]


class AuditActivities:
    def __init__(self, trail: AuditTrail) -> None:
        self.trail = trail

    @activity.defn(name=AUDIT_ACTIVITY)
    async def record(self, note: AuditNote) -> bool:
        return await self.trail.record(
            workflow_id=note.workflow_id,
            plant=note.plant,
            order=note.order,
            actor=note.actor,
            action=note.action,
            detail=dict(note.detail),
            dedup_key=note.dedup_key,
        )

    def all(self) -> list[object]:
        return [self.record]
