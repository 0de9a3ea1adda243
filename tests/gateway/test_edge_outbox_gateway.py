"""The edge outbox's forwarder against the real gateway: the gateway's per-event answers in a batch
(an event waiting for its order: accepted; an event for a plant the edge key is not bound to: a
per-event 403) -> the first final, the second refused `max_refusals` times, then dead."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from plantbridge.edge.config import GatewayConfig
from plantbridge.edge.outbox import Forwarder, Outbox, open_db
from tests.conftest import event, new_order
from tests.gateway.conftest import Gateway, eventually


async def test_forwarder_reads_the_real_gateways_per_event_answers(gateway: Gateway, tmp_path: Path) -> None:
    order = new_order()  # plant 1000, no saga: its event waits in the gateway's inbox (202 accepted)
    waiting = event(order, "downtime_started", source="edge-1000", work_center="ASSY-01")
    foreign = event(order.model_copy(update={"plant": "2000"}), "downtime_started", source="edge-1000",
                    work_center="ASSY-01")  # the edge key is bound to plant 1000 only: 403 for this one
    db = open_db(tmp_path / "outbox.db")
    outbox = Outbox(db)
    outbox.store([waiting, foreign], {})
    config = GatewayConfig(url=gateway.url, backoff_initial_s=0.05, backoff_max_s=0.2, max_refusals=2)
    forwarder = Forwarder(outbox, config, gateway.keys["edge1000"])
    task = asyncio.create_task(forwarder.run())
    try:
        await eventually(lambda: outbox.counts().get("dead") == 1, what="the refused event dead")
    finally:
        forwarder.stop()
        await task
    rows = {row["event_id"]: row for row in outbox.all_events()}
    db.close()
    assert rows[waiting.event_id]["status"] == "accepted"
    dead = rows[foreign.event_id]
    assert dead["status"] == "dead"
    answer = json.loads(dead["answer"])
    assert answer["http_status"] == 403 and answer["error"]["code"] == "forbidden_plant"
    assert forwarder.stats.refused == 2 and forwarder.stats.dead == 1 and forwarder.stats.accepted == 1
