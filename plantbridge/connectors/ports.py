"""The interfaces the saga's activities call. Each outside system plugs in behind one of these.

`key` is the posting's external key (see `canonical.commands.external_key`): a connector whose
system has a field for it stores it there and, when `retry` is true (an earlier attempt may have
reached the system), looks the posting up by it before posting again.
"""

from __future__ import annotations

from typing import Protocol

from plantbridge.canonical.commands import (
    Acknowledge,
    Alert,
    CompleteOrder,
    ConfirmOperation,
    Dispatch,
    GoodsMovement,
    GoodsReceipt,
    Hold,
    Inspection,
    MaintenanceNotification,
    Recall,
    Reservation,
    ShipmentReady,
    Stage,
    StepResult,
    StockBlock,
    Transfer,
    UsageDecision,
)
from plantbridge.canonical.order import ProductionOrder


class ErpConnector(Protocol):
    async def confirm_operation(
        self, order: ProductionOrder, cmd: ConfirmOperation, *, key: str, retry: bool
    ) -> StepResult: ...

    async def goods_movement(
        self, order: ProductionOrder, cmd: GoodsMovement, *, key: str, retry: bool
    ) -> StepResult: ...

    async def goods_receipt(
        self, order: ProductionOrder, cmd: GoodsReceipt, *, key: str, retry: bool
    ) -> StepResult: ...

    async def complete_order(
        self, order: ProductionOrder, cmd: CompleteOrder, *, key: str, retry: bool
    ) -> StepResult: ...

    async def usage_decision(
        self, order: ProductionOrder, cmd: UsageDecision, *, key: str, retry: bool
    ) -> StepResult: ...

    async def maintenance_notification(
        self, order: ProductionOrder, cmd: MaintenanceNotification, *, key: str, retry: bool
    ) -> StepResult: ...


class MesConnector(Protocol):
    async def dispatch(self, order: ProductionOrder, cmd: Dispatch, *, key: str, retry: bool) -> StepResult: ...

    async def recall(self, order: ProductionOrder, cmd: Recall, *, key: str, retry: bool) -> StepResult: ...

    async def hold(self, order: ProductionOrder, cmd: Hold, *, key: str, retry: bool) -> StepResult: ...

    async def acknowledge(self, order: ProductionOrder, cmd: Acknowledge, *, key: str, retry: bool) -> StepResult: ...


class QmsConnector(Protocol):
    async def inspection(self, order: ProductionOrder, cmd: Inspection, *, key: str, retry: bool) -> StepResult: ...


class WmsConnector(Protocol):
    async def stage(self, order: ProductionOrder, cmd: Stage, *, key: str, retry: bool) -> StepResult: ...

    async def stock_block(self, order: ProductionOrder, cmd: StockBlock, *, key: str, retry: bool) -> StepResult: ...

    async def transfer(self, order: ProductionOrder, cmd: Transfer, *, key: str, retry: bool) -> StepResult: ...

    async def reserve(self, order: ProductionOrder, cmd: Reservation, *, key: str, retry: bool) -> StepResult: ...

    async def shipment_ready(
        self, order: ProductionOrder, cmd: ShipmentReady, *, key: str, retry: bool
    ) -> StepResult: ...


class Notifier(Protocol):
    async def alert(self, order: ProductionOrder, cmd: Alert, *, key: str, retry: bool) -> StepResult: ...


class PlantSystems(Protocol):
    """The connectors of one plant."""

    @property
    def erp(self) -> ErpConnector: ...

    @property
    def mes(self) -> MesConnector: ...

    @property
    def qms(self) -> QmsConnector: ...

    @property
    def wms(self) -> WmsConnector: ...

    @property
    def notify(self) -> Notifier: ...

class ConnectorRegistry(Protocol):
    def for_plant(self, plant: str) -> PlantSystems: ...


class OrderSource(Protocol):
    """Reads a production order from the ERP (release intake: the business event names the order,
    the connector reads it back with operations and components)."""

    async def read_order(self, number: str) -> ProductionOrder: ...
