"""The order walks every state to `posted`; each ERP posting is recorded exactly once."""

from __future__ import annotations

from collections import Counter

from temporalio.client import Client

from plantbridge.canonical import OrderState
from plantbridge.client import order_summary, start_order, submit_event
from plantbridge.connectors.memory import MemoryStore
from plantbridge.store import AuditTrail, Ledger
from tests.conftest import event, fast_policy, new_order, qty


async def test_order_walks_every_state_to_posted(
    client: Client, worker: object, reference: MemoryStore, ledger: Ledger, audit: AuditTrail
) -> None:
    order = new_order()
    handle = await start_order(client, order, fast_policy())
    seen_states: list[OrderState] = []

    async def send(ev_type: str, **fields: object) -> None:
        ack = await submit_event(client, event(order, ev_type, **fields))
        assert ack.status == "accepted", ack
        if ack.order_state is not None:
            seen_states.append(ack.order_state)

    await send("operation_started", operation="0010", work_center="ASSY-01")
    await send("operation_confirmed", operation="0010", yield_qty=qty(60), scrap_qty=qty(2))
    await send("material_consumed", material="RM-SEAL", quantity=qty(60), storage_location="0001")
    await send("operation_confirmed", operation="0010", yield_qty=qty(38), final=True)
    await send("operation_started", operation="0020", work_center="TEST-01")
    await send("operation_confirmed", operation="0020", yield_qty=qty(98), final=True,
               activities={"setup_min": "15", "machine_min": "120", "labor_min": "90"})

    result = await handle.result()
    assert result.state is OrderState.POSTED
    assert seen_states[:2] == [OrderState.IN_PROGRESS, OrderState.PARTIALLY_CONFIRMED]
    assert OrderState.COMPLETED in seen_states
    timeline_states = [t.text for t in result.timeline if t.kind == "state"]
    for target in ("released", "in_progress", "partially_confirmed", "completed", "posted"):
        assert any(f"→ {target}" in line for line in timeline_states), (target, timeline_states)

    erp = await reference.calls(system="erp", order=order.number)
    ops = Counter(call.operation for call in erp)
    assert ops == {"confirm_operation": 3, "goods_movement": 1, "goods_receipt": 1, "complete_order": 1}
    # Exactly once: one record per external key, and the ledger agrees.
    assert len({call.external_key for call in erp}) == len(erp)
    entries = [e for e in await ledger.entries(handle.id) if e.system == "erp"]
    assert len(entries) == len(erp) and all(e.status == "succeeded" for e in entries)
    # Backflush: 50 KGM steel for 100 pieces, issued with op 0010's confirmations (62 and 38 produced).
    conf = [c.payload for c in erp if c.operation == "confirm_operation" and c.payload["operation"] == "0010"]
    issued = sorted(m["quantity"]["quantity"] for p in conf for m in p["goods_movements"])
    assert issued == ["19.000", "31.000"]
    gr = next(c.payload for c in erp if c.operation == "goods_receipt")
    assert gr["quantity"] == {"quantity": "98", "uom": "H87"}
    mes = Counter(c.operation for c in await reference.calls(system="mes", order=order.number))
    assert mes["dispatch"] == 1 and mes["acknowledge"] == 4  # one business ack per event that posted
    wms = Counter(c.operation for c in await reference.calls(system="wms", order=order.number))
    assert wms == {"stage": 1, "transfer": 1, "shipment_ready": 1}
    summary = await order_summary(client, order.plant, order.number)
    assert len(summary.postings) == 6
    assert [r.action for r in await audit.records(workflow_id=handle.id)] == ["order_posted"]


async def test_order_reads_at_a_glance_in_the_temporal_ui(client: Client, worker: object) -> None:
    """The workflow list shows a static summary; the workflow page shows the operations."""
    order = new_order()
    handle = await start_order(client, order, fast_policy())
    desc = await handle.describe()
    assert await desc.static_summary() == f"{order.number} · plant {order.plant} · FG-1000 · 100 H87 · reference"
    details = await desc.static_details() or ""
    assert "| op | work center | planned |" in details and "| 0010 | ASSY-01 | 100 H87 |" in details
