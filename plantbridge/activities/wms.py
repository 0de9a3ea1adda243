"""WMS activities: staging, stock blocks, finished-goods transfer, shipment readiness."""

from __future__ import annotations

from typing import cast

from temporalio import activity

from plantbridge.activities.base import ActivityBase
from plantbridge.canonical import commands as c
from plantbridge.canonical.commands import StepRequest, StepResult
from plantbridge.connectors.ports import WmsCommand


class WmsActivities(ActivityBase):
    async def _run(self, req: StepRequest) -> StepResult:
        cmd = cast(WmsCommand, req.command)
        return await self.execute(req, lambda s, k, r: s.wms.execute(req.order, cmd, key=k, retry=r))

    @activity.defn(name=c.StepKind.WMS_STAGE.value)
    async def stage(self, req: StepRequest) -> StepResult:
        return await self._run(req)

    @activity.defn(name=c.StepKind.WMS_RELEASE_STAGING.value)
    async def release_staging(self, req: StepRequest) -> StepResult:
        return await self._run(req)

    @activity.defn(name=c.StepKind.WMS_BLOCK.value)
    async def block(self, req: StepRequest) -> StepResult:
        return await self._run(req)

    @activity.defn(name=c.StepKind.WMS_UNBLOCK.value)
    async def unblock(self, req: StepRequest) -> StepResult:
        return await self._run(req)

    @activity.defn(name=c.StepKind.WMS_TRANSFER.value)
    async def transfer(self, req: StepRequest) -> StepResult:
        return await self._run(req)

    @activity.defn(name=c.StepKind.WMS_SHIPMENT_READY.value)
    async def shipment_ready(self, req: StepRequest) -> StepResult:
        return await self._run(req)

    @activity.defn(name=c.StepKind.WMS_RESERVE.value)
    async def reserve(self, req: StepRequest) -> StepResult:
        return await self._run(req)

    def all(self) -> list[object]:
        return [
            self.stage,
            self.release_staging,
            self.block,
            self.unblock,
            self.transfer,
            self.shipment_ready,
            self.reserve,
        ]
