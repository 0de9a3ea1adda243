"""Plant policy `unknown_material`: consumption of a material that is not among the order's components
is posted as it comes (`allow`, the default) or held as an exception naming the material (`exception`)
until a supervisor retries (posted as sent) or skips it (not posted)."""

from __future__ import annotations

from temporalio.client import Client

from plantbridge.canonical import ExceptionResolution
from plantbridge.client import order_summary, start_order, submit_event
from plantbridge.connectors.memory import MemoryStore
from tests.conftest import event, fast_policy, new_order, qty
from tests.support import eventually


async def test_unknown_material_opens_an_exception_and_the_supervisor_decides(
    client: Client, worker: object, reference: MemoryStore
) -> None:
    order = new_order()  # components RM-STEEL, RM-SEAL
    handle = await start_order(client, order, fast_policy(unknown_material="exception"))

    async def issues() -> list[str]:
        calls = await reference.calls(system="erp", operation="goods_movement", order=order.number)
        return [c.payload["items"][0]["material"] for c in calls]

    known = await submit_event(client, event(order, "material_consumed", material="RM-SEAL", quantity=qty(5)))
    assert known.erp is not None and known.erp.status == "posted"  # a component: posted at once

    ack = await submit_event(client, event(order, "material_consumed", material="RM-OIL", quantity=qty(2)))
    assert ack.status == "accepted" and ack.erp is not None and ack.erp.status == "rejected", ack
    assert "RM-OIL" in (ack.erp.message or "")
    [exc] = (await order_summary(client, order.plant, order.number)).open_exceptions
    assert exc.category == "unknown_material" and exc.system == "erp"
    assert "material RM-OIL is not a component" in exc.message and "RM-STEEL" in exc.message
    assert await issues() == ["RM-SEAL"]  # nothing posted for RM-OIL

    await handle.signal("resolve_exception", ExceptionResolution(exception_id=exc.id, action="retry", by="anna",
                                                                 comment="oil is used on this line"))

    async def oil_posted() -> bool:
        return await issues() == ["RM-SEAL", "RM-OIL"]

    async def closed() -> bool:
        return not (await order_summary(client, order.plant, order.number)).open_exceptions

    await eventually(oil_posted, what="RM-OIL posted after the supervisor's retry")
    await eventually(closed, what="the exception resolved by the posting")

    await submit_event(client, event(order, "material_consumed", material="RM-GLUE", quantity=qty(1)))
    [glue] = (await order_summary(client, order.plant, order.number)).open_exceptions
    assert "RM-GLUE" in glue.message
    await handle.signal("resolve_exception", ExceptionResolution(exception_id=glue.id, action="skip", by="anna"))
    await eventually(closed, what="the skipped exception closed")
    assert await issues() == ["RM-SEAL", "RM-OIL"]  # RM-GLUE never posted


async def test_unknown_material_allowed_by_default(client: Client, worker: object, reference: MemoryStore) -> None:
    order = new_order()
    await start_order(client, order, fast_policy())
    ack = await submit_event(client, event(order, "material_consumed", material="RM-OIL", quantity=qty(2)))
    assert ack.erp is not None and ack.erp.status == "posted"
    assert not (await order_summary(client, order.plant, order.number)).open_exceptions
