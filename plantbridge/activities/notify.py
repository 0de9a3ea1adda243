"""Alerts and escalations (SLA breaches, rejections, downtime) through the plant's notifier."""

from __future__ import annotations

from typing import cast

from temporalio import activity

from plantbridge.activities.base import ActivityBase
from plantbridge.canonical import commands as c
from plantbridge.canonical.commands import StepRequest, StepResult
from plantbridge.connectors.ports import NotifyCommand


class NotifyActivities(ActivityBase):
    async def _run(self, req: StepRequest) -> StepResult:
        cmd = cast(NotifyCommand, req.command)
        return await self.execute(req, lambda s, k, r: s.notify.execute(req.order, cmd, key=k, retry=r))

    @activity.defn(name=c.StepKind.NOTIFY_ALERT.value)
    async def alert(self, req: StepRequest) -> StepResult:
        return await self._run(req)

    def all(self) -> list[object]:
        return [self.alert]
