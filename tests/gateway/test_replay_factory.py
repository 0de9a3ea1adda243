"""`plantbridge replay` builds its dependencies with the gateway's own factory: a dead plant event in the
plant's local codes (unit `PCS`, work center `L1-ASSY`, mapped by the plant file's cross-references) is
handled on replay as the gateway handles it on arrival. Without the plant files (the bare dependencies
replay had before) the same event is not accepted."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from temporalio.client import Client

from plantbridge.client import order_summary, start_order
from plantbridge.gateway.settings import GatewaySettings
from plantbridge.store import ApiKeys, Database, Inbox
from plantbridge.workers.supervisor_cli import replay_messages
from plantbridge_devtools.temporal_server import DevServer
from tests.conftest import TASK_QUEUE, fast_policy, new_order
from tests.gateway.conftest import wire

PLANT_FILE = """plant: "1000"
erp: {kind: reference}
xref:
  work_centers: {L1-ASSY: ASSY-01}
  units: {PCS: H87}
"""


async def _dead_letter(db: Database, key_id: str, body: dict[str, object]) -> int:
    inbox = Inbox(db)
    msg_id = await inbox.receive("plant_event", json.dumps(body).encode(), content_type="application/json",
                                 key_id=key_id)
    await inbox.finish(msg_id, "dead", reason="Temporal refused the event (test)")
    return msg_id


async def test_replay_uses_the_plants_cross_references(
    client: Client, db: Database, worker: object, temporal_server: DevServer, tmp_path: Path,
) -> None:
    plants = tmp_path / "plants"
    plants.mkdir()
    (plants / "1000.yaml").write_text(PLANT_FILE)
    order = new_order()
    await start_order(client, order, fast_policy())
    info, _ = await ApiKeys(db).create(f"mes-replay-{uuid.uuid4().hex[:6]}", "plant-system", ["1000"])

    def local_event() -> dict[str, object]:
        return wire(order, "operation_confirmed", operation="0010", work_center="L1-ASSY",
                    yield_qty={"quantity": "3", "uom": "PCS"})

    settings = GatewaySettings(temporal_address=temporal_server.address, store_url=db.url, task_queue=TASK_QUEUE)
    bare = await replay_messages(settings, msg_id=await _dead_letter(db, info.key_id, local_event()))
    assert bare[0][1].body.get("status") != "accepted", bare  # local codes reach the saga untranslated

    with_plants = settings.model_copy(update={"plants_dir": plants})
    msg_id = await _dead_letter(db, info.key_id, local_event())
    [(replayed_id, out)] = await replay_messages(with_plants, msg_id=msg_id)
    assert replayed_id == msg_id and out.http_status in (200, 202) and out.body["status"] == "accepted", out.body
    summary = await order_summary(client, order.plant, order.number)
    assert summary.operations["0010"].confirmations == 1
    row = await Inbox(db).get(msg_id)
    assert row is not None and row.status == "processed"
