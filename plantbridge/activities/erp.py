"""ERP activities: confirmations, goods movements, goods receipt, completion, usage decisions,
maintenance notifications. Each goes through the plant's ERP connector (SAP OData, SAP RFC, Odoo or
the reference ERP)."""

from __future__ import annotations

from typing import cast

from temporalio import activity

from plantbridge.activities.base import ActivityBase
from plantbridge.canonical import commands as c
from plantbridge.canonical.commands import StepRequest, StepResult
from plantbridge.connectors.ports import ErpCommand


class ErpActivities(ActivityBase):
    async def _run(self, req: StepRequest) -> StepResult:
        cmd = cast(ErpCommand, req.command)
        return await self.execute(req, lambda s, k, r: s.erp.execute(req.order, cmd, key=k, retry=r))

    @activity.defn(name=c.StepKind.ERP_CONFIRM_OPERATION.value)
    async def confirm_operation(self, req: StepRequest) -> StepResult:
        return await self._run(req)

    @activity.defn(name=c.StepKind.ERP_GOODS_MOVEMENT.value)
    async def goods_movement(self, req: StepRequest) -> StepResult:
        return await self._run(req)

    @activity.defn(name=c.StepKind.ERP_GOODS_RECEIPT.value)
    async def goods_receipt(self, req: StepRequest) -> StepResult:
        return await self._run(req)

    @activity.defn(name=c.StepKind.ERP_COMPLETE_ORDER.value)
    async def complete_order(self, req: StepRequest) -> StepResult:
        return await self._run(req)

    @activity.defn(name=c.StepKind.ERP_USAGE_DECISION.value)
    async def usage_decision(self, req: StepRequest) -> StepResult:
        return await self._run(req)

    @activity.defn(name=c.StepKind.ERP_MAINTENANCE_NOTIFICATION.value)
    async def maintenance_notification(self, req: StepRequest) -> StepResult:
        return await self._run(req)

    def all(self) -> list[object]:
        return [
            self.confirm_operation,
            self.goods_movement,
            self.goods_receipt,
            self.complete_order,
            self.usage_decision,
            self.maintenance_notification,
        ]
