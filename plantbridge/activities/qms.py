"""QMS activities: inspection results recorded against the order's inspection lot."""

from __future__ import annotations

from typing import cast

from temporalio import activity

from plantbridge.activities.base import ActivityBase
from plantbridge.canonical import commands as c
from plantbridge.canonical.commands import StepRequest, StepResult
from plantbridge.connectors.ports import QmsCommand


class QmsActivities(ActivityBase):
    async def _run(self, req: StepRequest) -> StepResult:
        cmd = cast(QmsCommand, req.command)
        return await self.execute(req, lambda s, k, r: s.qms.execute(req.order, cmd, key=k, retry=r))

    @activity.defn(name=c.StepKind.QMS_INSPECTION.value)
    async def inspection(self, req: StepRequest) -> StepResult:
        return await self._run(req)

    def all(self) -> list[object]:
        return [self.inspection]
