"""Replaying histories with the saga's workflows, and the opening of the recorded whole-order scenarios."""

from __future__ import annotations

from typing import Any

from temporalio.client import Client, WorkflowHandle, WorkflowHistory
from temporalio.worker import Replayer

from plantbridge.canonical import ExceptionResolution, ProductionOrder
from plantbridge.client import order_summary, submit_event
from plantbridge.connectors.memory import MemoryStore
from plantbridge.converter import pydantic_data_converter
from plantbridge.workflows.maintenance import MaintenanceRequestWorkflow
from plantbridge.workflows.production_order import ProductionOrderWorkflow

SEAL_DEFICIT = "Deficit of SL Unrestricted-use 12 KG : RM-SEAL 1000 0001"


async def assert_replays(history: WorkflowHistory) -> None:
    """The history replays with today's ProductionOrder and MaintenanceRequest code (no non-determinism)."""
    replayer = Replayer(
        workflows=[ProductionOrderWorkflow, MaintenanceRequestWorkflow], data_converter=pydantic_data_converter
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure


async def refuse_the_seal_once(reference: MemoryStore, order: ProductionOrder) -> None:
    """The ERP refuses the order's first goods movement (M7/021, a stock deficit)."""
    await reference.add_rule("erp", "goods_movement", order=order.number, code="M7/021", times=1,
                             message=SEAL_DEFICIT)


async def consumption_rejected_then_retried(client: Client, handle: WorkflowHandle[Any, Any],
                                            order: ProductionOrder) -> None:
    """Start operation 0010, confirm 50 (1 scrap), consume the seal (refused: see `refuse_the_seal_once`),
    and let a supervisor retry the exception it opened."""
    from tests.conftest import event, qty

    await submit_event(client, event(order, "operation_started", operation="0010"))
    await submit_event(client, event(order, "operation_confirmed", operation="0010", yield_qty=qty(50),
                                     scrap_qty=qty(1)))
    ack = await submit_event(client, event(order, "material_consumed", material="RM-SEAL", quantity=qty(12)))
    assert ack.erp is not None and ack.erp.status == "rejected"
    [exc] = (await order_summary(client, order.plant, order.number)).open_exceptions
    await handle.signal("resolve_exception", ExceptionResolution(exception_id=exc.id, action="retry", by="anna"))
