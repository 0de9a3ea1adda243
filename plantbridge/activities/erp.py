"""ERP activities: confirmations, goods movements, goods receipt, completion, usage decisions,
maintenance notifications. Each goes through the plant's ERP connector (SAP OData, SAP RFC, Odoo or
the reference ERP)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TypeVar, cast

from temporalio import activity
from temporalio.exceptions import ApplicationError

from plantbridge import contract
from plantbridge.activities.base import ActivityBase
from plantbridge.canonical import commands as c
from plantbridge.canonical.commands import StepRequest, StepResult
from plantbridge.canonical.order import ProductionOrder, ReadOrderRequest
from plantbridge.canonical.plant_time import local_date
from plantbridge.connectors.errors import BusinessRejection, OrderNotFound
from plantbridge.connectors.ports import ErpCommand

Dated = TypeVar("Dated", c.ConfirmOperation, c.GoodsMovement, c.GoodsReceipt)


def plant_timezone(registry: object, plant: str) -> str:
    """The plant file's time zone (`UTC` for a plant without a file, or a registry without files)."""
    plants = getattr(registry, "plants", None)
    cfg = plants.get(plant) if isinstance(plants, dict) else None
    return str(getattr(cfg, "timezone", "UTC"))


class ErpActivities(ActivityBase):
    def dated(self, cmd: Dated, req: StepRequest) -> Dated:
        """The command with its posting date: the plant-local date of the event (of now, without one)."""
        if cmd.posting_date is not None:
            return cmd
        at = req.event_at or datetime.now(UTC)
        return cmd.model_copy(update={"posting_date": local_date(at, plant_timezone(self.registry, req.order.plant))})

    async def _run(self, req: StepRequest, cmd: ErpCommand | None = None) -> StepResult:
        command = cmd if cmd is not None else cast(ErpCommand, req.command)
        return await self.execute(req, lambda s, k, r: s.erp.execute(req.order, command, key=k, retry=r))

    @activity.defn(name=c.StepKind.ERP_CONFIRM_OPERATION.value)
    async def confirm_operation(self, req: StepRequest) -> StepResult:
        return await self._run(req, self.dated(cast(c.ConfirmOperation, req.command), req))

    @activity.defn(name=c.StepKind.ERP_GOODS_MOVEMENT.value)
    async def goods_movement(self, req: StepRequest) -> StepResult:
        return await self._run(req, self.dated(cast(c.GoodsMovement, req.command), req))

    @activity.defn(name=c.StepKind.ERP_GOODS_RECEIPT.value)
    async def goods_receipt(self, req: StepRequest) -> StepResult:
        return await self._run(req, self.dated(cast(c.GoodsReceipt, req.command), req))

    @activity.defn(name=c.StepKind.ERP_COMPLETE_ORDER.value)
    async def complete_order(self, req: StepRequest) -> StepResult:
        return await self._run(req)

    @activity.defn(name=c.StepKind.ERP_USAGE_DECISION.value)
    async def usage_decision(self, req: StepRequest) -> StepResult:
        return await self._run(req)

    @activity.defn(name=c.StepKind.ERP_MAINTENANCE_NOTIFICATION.value)
    async def maintenance_notification(self, req: StepRequest) -> StepResult:
        return await self._run(req)

    @activity.defn(name=contract.ERP_READ_ORDER)
    async def read_order(self, req: ReadOrderRequest) -> ProductionOrder:
        """The order as the plant's ERP holds it now (after an `order_changed` notice). Read-only, no ledger."""
        erp = self.registry.for_plant(req.plant).erp
        reader = getattr(erp, "read_order", None)
        if reader is None:
            raise ApplicationError(f"the ERP connector of plant {req.plant} cannot read orders",
                                   type=contract.UNEXPECTED_ERROR, non_retryable=True)
        try:
            order: ProductionOrder = await reader(req.order)
        except OrderNotFound as err:
            raise ApplicationError(str(err), type=contract.BUSINESS_REJECTION, non_retryable=True) from err
        except BusinessRejection as err:
            raise ApplicationError(err.message, type=contract.BUSINESS_REJECTION, non_retryable=True) from err
        if order.plant != req.plant:  # a connector serving several plants: the saga's plant wins
            order = order.model_copy(update={"plant": req.plant})
        return order

    def all(self) -> list[object]:
        return [
            self.read_order,
            self.confirm_operation,
            self.goods_movement,
            self.goods_receipt,
            self.complete_order,
            self.usage_decision,
            self.maintenance_notification,
        ]
