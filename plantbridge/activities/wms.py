"""WMS activities: staging, stock blocks, finished-goods transfer, shipment readiness."""

from __future__ import annotations

from typing import cast

from temporalio import activity

from plantbridge.activities.base import ActivityBase
from plantbridge.canonical import commands as c
from plantbridge.canonical.commands import StepRequest, StepResult


class WmsActivities(ActivityBase):
    @activity.defn(name=c.StepKind.WMS_STAGE.value)
    async def stage(self, req: StepRequest) -> StepResult:
        cmd = cast(c.Stage, req.command)
        return await self.execute(req, lambda s, k, r: s.wms.stage(req.order, cmd, key=k, retry=r))

    @activity.defn(name=c.StepKind.WMS_RELEASE_STAGING.value)
    async def release_staging(self, req: StepRequest) -> StepResult:
        cmd = cast(c.Stage, req.command)
        return await self.execute(req, lambda s, k, r: s.wms.stage(req.order, cmd, key=k, retry=r))

    @activity.defn(name=c.StepKind.WMS_BLOCK.value)
    async def block(self, req: StepRequest) -> StepResult:
        cmd = cast(c.StockBlock, req.command)
        return await self.execute(req, lambda s, k, r: s.wms.stock_block(req.order, cmd, key=k, retry=r))

    @activity.defn(name=c.StepKind.WMS_UNBLOCK.value)
    async def unblock(self, req: StepRequest) -> StepResult:
        cmd = cast(c.StockBlock, req.command)
        return await self.execute(req, lambda s, k, r: s.wms.stock_block(req.order, cmd, key=k, retry=r))

    @activity.defn(name=c.StepKind.WMS_TRANSFER.value)
    async def transfer(self, req: StepRequest) -> StepResult:
        cmd = cast(c.Transfer, req.command)
        return await self.execute(req, lambda s, k, r: s.wms.transfer(req.order, cmd, key=k, retry=r))

    @activity.defn(name=c.StepKind.WMS_SHIPMENT_READY.value)
    async def shipment_ready(self, req: StepRequest) -> StepResult:
        cmd = cast(c.ShipmentReady, req.command)
        return await self.execute(req, lambda s, k, r: s.wms.shipment_ready(req.order, cmd, key=k, retry=r))

    @activity.defn(name=c.StepKind.WMS_RESERVE.value)
    async def reserve(self, req: StepRequest) -> StepResult:
        cmd = cast(c.Reservation, req.command)
        return await self.execute(req, lambda s, k, r: s.wms.reserve(req.order, cmd, key=k, retry=r))

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
