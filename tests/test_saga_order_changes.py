"""The saga follows ERP order changes (issue 14) on a real Temporal server with the in-memory systems:
`order_changed` carries key and version only, the saga reads the order through `erp.read_order`."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from temporalio.client import Client

from plantbridge.canonical.order import OrderChangeNotice, ProductionOrder
from plantbridge.client import order_summary, start_order, submit_event
from plantbridge.connectors.memory import MemoryStore
from plantbridge.workflows.production_order import ProductionOrderWorkflow
from tests.conftest import event, fast_policy, new_order, qty
from tests.support import eventually


def change_in_erp(reference: MemoryStore, order: ProductionOrder, version: str, *, planned: int | None = None,
                  **update: Any) -> ProductionOrder:
    """The ERP now holds this version of the order (what `erp.read_order` returns)."""
    data = order.model_dump(mode="json")
    data.update(version=version, **update)
    if planned is not None:
        data["operations"] = [{**op, "planned_qty": qty(planned)} for op in data["operations"]]
    changed = ProductionOrder.model_validate(data)
    reference.orders[order.number] = changed
    return changed


def notice(order: ProductionOrder) -> OrderChangeNotice:
    return OrderChangeNotice(plant=order.plant, order=order.number, version=order.version, source="test")


async def test_raised_quantity_lets_the_extra_yield_post_and_teco_ends_postings(
        client: Client, worker: object, reference: MemoryStore) -> None:
    order = new_order(version="20260301080000")
    reference.orders[order.number] = order
    handle = await start_order(client, order, fast_policy())
    over = event(order, "operation_confirmed", operation="0010", yield_qty=qty(110))
    ack = await submit_event(client, over)
    assert ack.status == "rejected" and "over-confirmation" in (ack.reason or "")
    raised = change_in_erp(reference, order, "20260301090000", quantity=qty(120), planned=120)
    await handle.signal(ProductionOrderWorkflow.order_changed, notice(raised))

    async def applied() -> bool:
        return (await order_summary(client, order.plant, order.number)).order.quantity.quantity == 120

    await eventually(applied)
    # An older notice (a late, out-of-order message) changes nothing.
    await handle.signal(ProductionOrderWorkflow.order_changed, notice(order))
    ack = await submit_event(client, event(order, "operation_confirmed", operation="0010", yield_qty=qty(110)))
    assert ack.status == "accepted" and ack.erp is not None and ack.erp.status == "posted"
    assert [c for c in await reference.calls("mes", "change_order", order.number)]
    teco = change_in_erp(reference, raised, "20260301100000", erp_status={"technically_completed": True})
    await handle.signal(ProductionOrderWorkflow.order_changed, notice(teco))

    async def posted() -> Any:
        s = await order_summary(client, order.plant, order.number)
        return s if s.state.value == "posted" else None

    s = await eventually(posted, timeout=60)
    assert s.order.quantity.quantity == Decimal(120) and s.order_changes == 2
    assert any("not newer" in t.text for t in s.timeline)
    erp = await reference.calls("erp", order=order.number)
    assert [c.operation for c in erp] == ["confirm_operation"]  # no goods receipt, no completion after TECO
