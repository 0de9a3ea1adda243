"""The ports the saga's activities call: one small port per outside system, like an httpx transport.

Each port has one method, `execute(order, cmd, *, key, retry)`, taking any command of its system
(`ErpCommand`, `MesCommand`, ...). A connector class keeps one method per command
(`confirm_operation`, `goods_movement`, ...: the `*Connector` protocols below) and mixes in
`CommandDispatch`, which maps `execute` onto them by the command's type.

`key` is the posting's external key (see `canonical.commands.external_key`): a connector whose
system has a field for it stores it there and, when `retry` is true (an earlier attempt may have
reached the system), looks the posting up by it before posting again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, TypeAlias

from plantbridge.canonical.commands import (
    Acknowledge,
    Alert,
    ChangeOrder,
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
from plantbridge.connectors.errors import UnsupportedCommand

ErpCommand: TypeAlias = (
    ConfirmOperation | GoodsMovement | GoodsReceipt | CompleteOrder | UsageDecision | MaintenanceNotification
)
MesCommand: TypeAlias = Dispatch | ChangeOrder | Recall | Hold | Acknowledge
QmsCommand: TypeAlias = Inspection
WmsCommand: TypeAlias = Stage | StockBlock | Transfer | Reservation | ShipmentReady
NotifyCommand: TypeAlias = Alert
AnyCommand: TypeAlias = ErpCommand | MesCommand | QmsCommand | WmsCommand | NotifyCommand


class ErpPort(Protocol):
    async def execute(self, order: ProductionOrder, cmd: ErpCommand, *, key: str, retry: bool) -> StepResult: ...


class MesPort(Protocol):
    async def execute(self, order: ProductionOrder, cmd: MesCommand, *, key: str, retry: bool) -> StepResult: ...


class QmsPort(Protocol):
    async def execute(self, order: ProductionOrder, cmd: QmsCommand, *, key: str, retry: bool) -> StepResult: ...


class WmsPort(Protocol):
    async def execute(self, order: ProductionOrder, cmd: WmsCommand, *, key: str, retry: bool) -> StepResult: ...


class NotifyPort(Protocol):
    async def execute(self, order: ProductionOrder, cmd: NotifyCommand, *, key: str, retry: bool) -> StepResult: ...


# The method `CommandDispatch.execute` calls for each command type.
COMMAND_METHODS: dict[type[AnyCommand], str] = {
    ConfirmOperation: "confirm_operation",
    GoodsMovement: "goods_movement",
    GoodsReceipt: "goods_receipt",
    CompleteOrder: "complete_order",
    UsageDecision: "usage_decision",
    MaintenanceNotification: "maintenance_notification",
    Dispatch: "dispatch",
    ChangeOrder: "change_order",
    Recall: "recall",
    Hold: "hold",
    Acknowledge: "acknowledge",
    Inspection: "inspection",
    Stage: "stage",
    StockBlock: "stock_block",
    Transfer: "transfer",
    Reservation: "reserve",
    ShipmentReady: "shipment_ready",
    Alert: "alert",
}


class CommandDispatch:
    """Mixin: `execute` calls the connector's method for the command's type.

    A command the connector has no method for raises `UnsupportedCommand` naming both.
    """

    async def execute(self, order: ProductionOrder, cmd: AnyCommand, *, key: str, retry: bool) -> StepResult:
        name = COMMAND_METHODS.get(type(cmd))
        method: Callable[..., Awaitable[StepResult]] | None = getattr(self, name, None) if name else None
        if method is None:
            raise UnsupportedCommand(
                f"{type(self).__name__} cannot execute {type(cmd).__name__}"
                + (f" (no method {name!r})" if name else " (not a command of any port)")
            )
        return await method(order, cmd, key=key, retry=retry)


# -- the per-command shape of a connector (what `CommandDispatch` dispatches onto) ----------------


class ErpConnector(ErpPort, Protocol):
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


class MesConnector(MesPort, Protocol):
    async def dispatch(self, order: ProductionOrder, cmd: Dispatch, *, key: str, retry: bool) -> StepResult: ...

    async def recall(self, order: ProductionOrder, cmd: Recall, *, key: str, retry: bool) -> StepResult: ...

    async def hold(self, order: ProductionOrder, cmd: Hold, *, key: str, retry: bool) -> StepResult: ...

    async def acknowledge(self, order: ProductionOrder, cmd: Acknowledge, *, key: str, retry: bool) -> StepResult: ...


class QmsConnector(QmsPort, Protocol):
    async def inspection(self, order: ProductionOrder, cmd: Inspection, *, key: str, retry: bool) -> StepResult: ...


class WmsConnector(WmsPort, Protocol):
    async def stage(self, order: ProductionOrder, cmd: Stage, *, key: str, retry: bool) -> StepResult: ...

    async def stock_block(self, order: ProductionOrder, cmd: StockBlock, *, key: str, retry: bool) -> StepResult: ...

    async def transfer(self, order: ProductionOrder, cmd: Transfer, *, key: str, retry: bool) -> StepResult: ...

    async def reserve(self, order: ProductionOrder, cmd: Reservation, *, key: str, retry: bool) -> StepResult: ...

    async def shipment_ready(
        self, order: ProductionOrder, cmd: ShipmentReady, *, key: str, retry: bool
    ) -> StepResult: ...


class Notifier(NotifyPort, Protocol):
    async def alert(self, order: ProductionOrder, cmd: Alert, *, key: str, retry: bool) -> StepResult: ...


class PlantSystems(Protocol):
    """The ports of one plant."""

    @property
    def erp(self) -> ErpPort: ...

    @property
    def mes(self) -> MesPort: ...

    @property
    def qms(self) -> QmsPort: ...

    @property
    def wms(self) -> WmsPort: ...

    @property
    def notify(self) -> NotifyPort: ...


class ConnectorRegistry(Protocol):
    def for_plant(self, plant: str) -> PlantSystems: ...


class OrderSource(Protocol):
    """Reads a production order from the ERP (release intake: the business event names the order,
    the connector reads it back with operations and components).

    Raises `connectors.errors.OrderNotFound` (a `LookupError`) when the ERP does not know the order;
    any other error means the ERP could not answer.
    """

    async def read_order(self, number: str) -> ProductionOrder: ...
