"""MES activities: dispatch, recall, hold / release, business acknowledgements."""

from __future__ import annotations

from typing import cast

from temporalio import activity

from plantbridge.activities.base import ActivityBase
from plantbridge.canonical import commands as c
from plantbridge.canonical.commands import StepRequest, StepResult
from plantbridge.connectors.ports import MesCommand


class MesActivities(ActivityBase):
    async def _run(self, req: StepRequest) -> StepResult:
        cmd = cast(MesCommand, req.command)
        return await self.execute(req, lambda s, k, r: s.mes.execute(req.order, cmd, key=k, retry=r))

    @activity.defn(name=c.StepKind.MES_DISPATCH.value)
    async def dispatch(self, req: StepRequest) -> StepResult:
        return await self._run(req)

    @activity.defn(name=c.StepKind.MES_CHANGE_ORDER.value)
    async def change_order(self, req: StepRequest) -> StepResult:
        return await self._run(req)

    @activity.defn(name=c.StepKind.MES_RECALL.value)
    async def recall(self, req: StepRequest) -> StepResult:
        return await self._run(req)

    @activity.defn(name=c.StepKind.MES_HOLD.value)
    async def hold(self, req: StepRequest) -> StepResult:
        return await self._run(req)

    @activity.defn(name=c.StepKind.MES_RELEASE_HOLD.value)
    async def release_hold(self, req: StepRequest) -> StepResult:
        return await self._run(req)

    @activity.defn(name=c.StepKind.MES_ACKNOWLEDGE.value)
    async def acknowledge(self, req: StepRequest) -> StepResult:
        return await self._run(req)

    def all(self) -> list[object]:
        return [self.dispatch, self.change_order, self.recall, self.hold, self.release_hold, self.acknowledge]
