"""An event whose outcome write was lost after its saga took it (the gateway died between the answer and the
write) is left `received`; once its lease runs out the re-driver delivers it again, the saga answers `duplicate`,
and the row ends `processed` with nothing posted twice."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from temporalio.client import Client

from plantbridge.client import order_summary, start_order
from plantbridge.connectors.memory import MemoryStore
from plantbridge.store.inbox import Inbox, InboxMessage
from plantbridge.store.models import utcnow
from tests.conftest import fast_policy, new_order, qty
from tests.gateway.conftest import Gateway, wire


async def test_lost_outcome_write_is_redriven_as_duplicate_and_posted_once(
    gateway: Gateway, http: httpx.AsyncClient, client: Client, reference: MemoryStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    order = new_order()
    await start_order(client, order, fast_policy())
    event = wire(order, "operation_confirmed", operation="0010", yield_qty=qty(40))
    inbox: Inbox = gateway.intake.inbox
    lost: list[int] = []

    async def lose(msg_id: int, status: str, **_kwargs: Any) -> None:
        lost.append(msg_id)  # the process "dies" here: the outcome is never written

    monkeypatch.setattr(inbox, "finish", lose)
    r = await http.post("/v1/plant/events", json=event, headers=gateway.auth("mes1000"))
    monkeypatch.undo()
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "accepted" and r.json()["erp"]["status"] == "posted"
    msg_id = int(r.headers["X-Inbox-Id"])
    assert lost == [msg_id]
    row = await inbox.get(msg_id)
    assert row is not None and row.status == "received" and row.lease_owner == gateway.deps.instance

    # The dead process's lease runs out (its row was received longer ago than a lease).
    past = utcnow() - gateway.deps.inbox_lease - timedelta(seconds=1)
    async with gateway.deps.db.engine.begin() as conn:
        await conn.execute(update(InboxMessage).where(InboxMessage.id == msg_id)
                           .values(received_at=past, lease_until=past))
    assert await gateway.intake.redrive_stale_received() >= 1

    row = await inbox.get(msg_id)
    assert row is not None and row.status == "processed" and row.lease_owner is None
    assert row.answer["http_status"] == 200 and row.answer["body"]["status"] == "duplicate"
    assert (row.plant, row.order_number, row.event_id) == (order.plant, order.number, event["event_id"])
    summary = await order_summary(client, order.plant, order.number)
    assert summary.events_accepted == 1 and summary.operations["0010"].confirmations == 1
    confirmations = await reference.calls(system="erp", operation="confirm_operation", order=order.number)
    assert len(confirmations) == 1
