"""ERP intake: business events and LOIPRO IDocs start sagas; waiting events; dead letters re-driven."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
from temporalio.client import Client

from plantbridge.canonical import PlantEvent
from plantbridge.client import order_summary, start_order
from plantbridge.connectors.errors import TransientError
from plantbridge.connectors.memory import MemoryStore
from plantbridge.converter import pydantic_data_converter
from plantbridge.gateway.deps import GatewayDeps
from plantbridge.gateway.erp_intake import ErpIntake
from plantbridge.gateway.idoc_loipro import IDOC_SOAP_NS, parse_loipro
from plantbridge.gateway.inbox import Intake
from plantbridge.gateway.openapi_examples import IDOC_EXAMPLE
from tests.conftest import fast_policy, new_order
from tests.gateway.conftest import Gateway, eventually, wire
from tests.support import free_port

FIXTURES = Path(__file__).parent.parent / "fixtures" / "idoc"


def cloud_event(number: str, kind: str = "Changed") -> dict[str, object]:
    return {"specversion": "1.0", "type": f"sap.s4.beh.productionorder.v1.ProductionOrder.{kind}.v1",
            "source": "/default/sap.s4.beh/S4HCLNT100", "id": f"ce-{number}-{kind}", "time": "2026-11-26T09:00:00Z",
            "datacontenttype": "application/json", "data": {"ManufacturingOrder": number.zfill(12)}}


async def test_event_waits_for_release_by_business_event(gateway: Gateway, http: httpx.AsyncClient,
                                                        client: Client) -> None:
    order = new_order(released=False)
    gateway.source.put(order)
    early = wire(order, "operation_started", operation="0010")
    r = await http.post("/v1/plant/events", json=early, headers=gateway.auth("mes1000"))
    assert r.status_code == 202 and r.json()["status"] == "accepted" and r.json()["erp"]["status"] == "pending"
    msg_id = int(r.headers["X-Inbox-Id"])
    assert (msg := await gateway.intake.inbox.get(msg_id)) is not None and msg.status == "waiting"

    created = await http.post("/v1/erp/sap/events", json=cloud_event(order.number, "Created"),
                              headers=gateway.auth("erp1000"))
    assert created.status_code == 200 and created.json()["reason"] == "order not released yet"
    assert not await gateway.intake.saga_exists(order.plant, order.number)

    gateway.source.put(order.model_copy(update={"released": True}))
    r = await http.post("/v1/erp/sap/events", json=cloud_event(order.number), headers=gateway.auth("erp1000"))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "started" and r.json()["delivered_waiting"] == 1
    again = await http.post("/v1/erp/sap/events", json=cloud_event(order.number), headers=gateway.auth("erp1000"))
    assert again.status_code == 200 and again.json()["status"] == "released"
    summary = await order_summary(client, order.plant, order.number)
    assert summary.events_accepted == 1 and summary.operations["0010"].started
    assert (msg := await gateway.intake.inbox.get(msg_id)) is not None and msg.status == "processed"


async def test_event_for_planned_saga_waits_and_erp_errors(gateway: Gateway, http: httpx.AsyncClient,
                                                          client: Client) -> None:
    order = new_order(released=False)
    await start_order(client, order, fast_policy())
    r = await http.post("/v1/plant/events", json=wire(order, "operation_started", operation="0010"),
                        headers=gateway.auth("mes1000"))
    assert r.status_code == 202
    gateway.source.put(order.model_copy(update={"released": True}))
    r = await http.post("/v1/erp/sap/events", json=cloud_event(order.number), headers=gateway.auth("erp1000"))
    assert r.json()["status"] == "released" and r.json()["delivered_waiting"] == 1
    await eventually(lambda: _accepted(client, order.plant, order.number, 1))

    h = gateway.auth("erp1000")
    # An order the ERP does not know (OrderNotFound from the order source): 404, kept as a dead letter.
    r = await http.post("/v1/erp/sap/events", json=cloud_event("99999999"), headers=h)
    assert r.status_code == 404 and r.json()["error"]["code"] == "erp_order_not_found"
    assert "order 99999999 does not exist" in r.json()["error"]["message"]
    dead = await gateway.intake.inbox.get(int(r.headers["X-Inbox-Id"]))
    assert dead is not None and dead.status == "dead" and b"99999999" in dead.body
    bad = cloud_event(order.number)
    bad["data"] = {}
    r = await http.post("/v1/erp/sap/events", json=bad, headers=h)
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["loc"] == ["data", "ManufacturingOrder"]
    r = await http.post("/v1/erp/sap/events", json=cloud_event(order.number), headers=gateway.auth("mes1000"))
    assert r.status_code == 403
    other = new_order(plant="2000")
    gateway.source.put(other)
    r = await http.post("/v1/erp/sap/events", json=cloud_event(other.number), headers=h)
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden_plant"
    assert (await http.post("/v1/erp/sap/events", json=cloud_event(order.number))).status_code == 401


async def _accepted(client: Client, plant: str, order: str, n: int) -> bool:
    return (await order_summary(client, plant, order)).events_accepted == n


def test_real_s4hana_idoc_parses() -> None:
    xml = (FIXTURES / "LOIPRO05_Original.xml").read_bytes()
    assert IDOC_SOAP_NS.encode() in xml
    [order] = parse_loipro(xml, {"HZ001": "HZ01"})
    assert (order.number, order.plant, order.material, order.released) == (
        "1895938", "HZ01", "D2O_EVOGUARD_DOUBLE_SEAT_VALVE_V1", True)
    assert [op.number for op in order.operations] == ["0060", "0070", "0080"]
    assert order.operations[0].work_center == "D2O_ASSY" and order.operations[0].control_key == "YBP1"
    first = order.components[0]
    assert (first.material, first.operation, first.storage_location, first.reservation, first.reservation_item) == (
        "D2O_DOUBLE_SEAT_VALVE_BODY", "0060", "101A", "0001950857", "0001")
    [minimal] = parse_loipro((FIXTURES / "LOIPRO05.xml").read_bytes())
    assert minimal.plant == "DM01" and minimal.quantity.quantity == 200


async def test_idoc_starts_saga_and_dead_letter_is_redriven_after_fix(gateway: Gateway, http: httpx.AsyncClient,
                                                                      client: Client) -> None:
    h = gateway.auth("erp_all")
    xml = (FIXTURES / "LOIPRO05_Original.xml").read_bytes()
    r = await http.post("/v1/erp/sap/idoc", content=xml, headers={**h, "Content-Type": "application/xml"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_idoc" and "HZ001" in r.text
    msg_id = int(r.headers["X-Inbox-Id"])
    assert (msg := await gateway.intake.inbox.get(msg_id)) is not None and msg.status == "dead"
    plant = f"H{uuid.uuid4().hex[:3].upper()}"  # a plant of its own: the test runs once per store backend
    gateway.deps.idoc_plant_map["HZ001"] = plant  # the cause is fixed
    try:
        [(rid, out)] = await gateway.intake.replay(msg_id=msg_id)
        assert rid == msg_id and out.http_status == 200 and out.body["orders"][0]["status"] == "started"
        assert await gateway.intake.replay(msg_id=msg_id) == []  # processed: nothing done twice
    finally:
        gateway.deps.idoc_plant_map.clear()
    summary = await order_summary(client, plant, "1895938")
    assert summary.order.erp_system == "sap_s4" and len(summary.order.components) == 12

    sample = IDOC_EXAMPLE.replace("000001004157", str(7_700_000 + uuid.uuid4().int % 90_000))
    r = await http.post("/v1/erp/sap/idoc", content=sample.encode(), headers=gateway.auth("erp1000"))
    assert r.status_code == 200 and r.json()["orders"][0]["status"] == "started"
    r = await http.post("/v1/erp/sap/idoc", content=b"<LOIPRO05><IDOC>", headers=h)
    assert r.status_code == 422 and "not well-formed" in r.json()["error"]["message"]
    r = await http.post("/v1/erp/sap/idoc", content=xml, headers=gateway.auth("erp1000"))
    assert r.status_code in (403, 422)


async def test_event_kept_while_temporal_is_away_is_delivered_by_the_redriver(gateway: Gateway, client: Client) -> None:
    """Temporal unreachable: 503 with Retry-After at once, the event kept `deferred`, then delivered once by the
    gateway's own re-driver when Temporal answers again (no manual replay)."""
    order = new_order()
    await start_order(client, order, fast_policy())
    unreachable = await Client.connect(f"127.0.0.1:{free_port()}", lazy=True,
                                       data_converter=pydantic_data_converter)
    broken = Intake(GatewayDeps(client=unreachable, db=gateway.deps.db))
    broken.deps.ack_wait = gateway.deps.ack_wait
    caller = await gateway.intake.keys.get(next(k.key_id for k in await gateway.intake.keys.all_keys()
                                                if k.name == gateway.names["mes1000"]))
    assert caller is not None
    body = wire(order, "operation_started", operation="0010")
    raw = json.dumps(body).encode()
    msg_id = await broken.inbox.receive("plant_event", raw, key_id=caller.key_id)
    out = await broken.plant_message(msg_id, raw, caller)
    assert out.http_status == 503 and out.headers.get("Retry-After", "").isdigit(), out
    assert (msg := await broken.inbox.get(msg_id)) is not None and msg.status in ("deferred", "processed")

    async def delivered() -> bool:  # the running gateway's re-driver takes it over
        row = await gateway.intake.inbox.get(msg_id)
        return row is not None and row.status == "processed"

    await eventually(delivered, timeout=30)
    row = await gateway.intake.inbox.get(msg_id)
    assert row is not None and row.answer["body"]["status"] == "accepted", row.answer
    second = await gateway.intake.deliver(msg_id, PlantEvent.model_validate(body))
    assert second.body["status"] == "duplicate"
    assert (await order_summary(client, order.plant, order.number)).events_accepted == 1


async def test_repeated_idoc_is_a_change_the_saga_reads_back(gateway: Gateway, http: httpx.AsyncClient,
                                                             client: Client, reference: MemoryStore) -> None:
    """SAP resends the whole order as LOIPRO on each change (ORDER-FACTS 3.1): the gateway tells the
    running saga (`order_changed`), which reads the order from its ERP (here the worker's in-memory ERP,
    holding what SAP holds now) and applies it; the older IDoc sent again afterwards changes nothing."""
    number = str(7_790_000 + uuid.uuid4().int % 9_000)
    first = IDOC_EXAMPLE.replace("000001004157", number)
    r = await http.post("/v1/erp/sap/idoc", content=first.encode(), headers=gateway.auth("erp1000"))
    assert r.status_code == 200 and r.json()["orders"][0]["status"] == "started"
    raised = first.replace("<GAMNG>100</GAMNG>", "<GAMNG>130</GAMNG>").replace("<MGVRG>100", "<MGVRG>130")
    [now_in_sap] = parse_loipro(raised.encode())
    reference.orders[now_in_sap.number] = now_in_sap
    r = await http.post("/v1/erp/sap/idoc", content=raised.encode(), headers=gateway.auth("erp1000"))
    assert r.status_code == 200 and r.json()["orders"][0]["status"] == "released"

    async def quantity() -> object:
        s = await order_summary(client, "1000", number)
        return s if s.order.quantity.quantity == 130 else None

    await eventually(quantity)
    r = await http.post("/v1/erp/sap/idoc", content=first.encode(), headers=gateway.auth("erp1000"))
    assert r.status_code == 200

    async def ignored() -> object:
        s = await order_summary(client, "1000", number)
        return s if sum("not newer" in t.text for t in s.timeline) >= 1 else None

    s = await eventually(ignored)
    assert s.order.quantity.quantity == 130 and s.order_changes == 1
    assert s.operations["0010"].planned == 130


class _ErpAway:
    """An order source whose ERP cannot answer now (a 503 from SAP's ICM, a time-out)."""

    async def read_order(self, number: str) -> object:
        raise TransientError("SAP answered HTTP 503", system="sap")


async def test_business_event_kept_while_the_erp_cannot_be_read_is_redriven(gateway: Gateway, client: Client) -> None:
    """The release event arrives while the ERP cannot answer the read-back: 503 with Retry-After, kept `deferred`
    (not a dead letter: an event mesh or Odoo's one-shot webhook may not send it again), then the gateway's
    re-driver reads the order and starts the saga."""
    order = new_order()
    gateway.source.put(order)
    away = Intake(GatewayDeps(client=client, db=gateway.deps.db, order_source=_ErpAway(),  # type: ignore[arg-type]
                              policy_for=gateway.deps.policy_for))
    caller = await gateway.intake.keys.get(next(k.key_id for k in await gateway.intake.keys.all_keys()
                                                if k.name == gateway.names["erp1000"]))
    assert caller is not None
    raw = json.dumps(cloud_event(order.number)).encode()
    msg_id = await away.inbox.receive("sap_event", raw, key_id=caller.key_id)
    out = await ErpIntake(away).sap_event(msg_id, raw, caller)
    assert out.http_status == 503 and out.headers.get("Retry-After", "").isdigit(), out
    assert out.body["error"]["code"] == "erp_unavailable", out.body
    assert (msg := await away.inbox.get(msg_id)) is not None and msg.status == "deferred"

    async def started() -> bool:  # the running gateway's re-driver reads the order from the ERP, now answering
        row = await gateway.intake.inbox.get(msg_id)
        return row is not None and row.status == "processed"

    await eventually(started, timeout=30)
    row = await gateway.intake.inbox.get(msg_id)
    assert row is not None and row.answer["body"]["status"] == "started", row.answer
    assert await gateway.intake.saga_exists(order.plant, order.number)
