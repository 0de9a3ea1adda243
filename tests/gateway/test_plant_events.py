"""POST /v1/plant/events over real HTTP: acks, batches, auth, limits, field errors, the inbox."""

from __future__ import annotations

import json

import httpx
from temporalio.client import Client

from plantbridge.client import order_summary, start_order
from tests.conftest import fast_policy, new_order, qty
from tests.gateway.conftest import Gateway, wire

URL = "/v1/plant/events"


async def test_single_event_acknowledged_and_duplicate(gateway: Gateway, http: httpx.AsyncClient,
                                                       client: Client) -> None:
    order = new_order()
    await start_order(client, order, fast_policy())
    started = wire(order, "operation_started", operation="0010", work_center="ASSY-01")
    r = await http.post(URL, json=started, headers=gateway.auth("mes1000"))
    assert r.status_code == 200, r.text
    assert r.json() == {"event_id": started["event_id"], "status": "accepted", "order_state": "in_progress",
                        "erp": {"status": "not_required", "documents": [], "message": None}, "reason": None}
    msg = await gateway.intake.inbox.get(int(r.headers["X-Inbox-Id"]))
    assert msg is not None and msg.status == "processed" and json.loads(msg.body) == started

    confirmed = wire(order, "operation_confirmed", operation="0010", yield_qty=qty(40))
    r = await http.post(URL, json=confirmed, headers=gateway.auth("edge1000"))
    assert r.status_code == 200 and r.json()["erp"]["status"] == "posted" and r.json()["erp"]["documents"]

    again = await http.post(URL, json=started, headers=gateway.auth("mes1000"))
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    rejected = await http.post(URL, json=wire(order, "operation_started", operation="0990"),
                               headers=gateway.auth("mes1000"))
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    assert "0990" in rejected.json()["reason"]
    summary = await order_summary(client, order.plant, order.number)
    assert summary.events_accepted == 2


async def test_batch_answers_each_event_in_order(gateway: Gateway, http: httpx.AsyncClient, client: Client) -> None:
    order = new_order()
    await start_order(client, order, fast_policy())
    good = wire(order, "operation_started", operation="0010")
    naive = wire(order, "operation_started", operation="0020", occurred_at="2026-11-26T10:15:00")
    other_plant = {**wire(order, "operation_started", operation="0020"), "plant": "2000"}
    r = await http.post(URL, json={"events": [good, naive, other_plant]}, headers=gateway.auth("mes1000"))
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["http_status"] for x in results] == [200, 422, 403]
    assert results[0]["status"] == "accepted"
    assert results[1]["error"]["fields"][0]["loc"] == ["events", 1, "occurred_at"]
    assert results[2]["error"]["code"] == "forbidden_plant"
    children = await gateway.intake.inbox.children(int(r.headers["X-Inbox-Id"]))
    assert [c.status for c in children] == ["processed", "dead", "dead"]
    assert all(c.reason for c in children[1:])


async def test_auth_and_roles(gateway: Gateway, http: httpx.AsyncClient) -> None:
    order = new_order()
    body = wire(order, "operation_started", operation="0010")
    r = await http.post(URL, json=body)
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"
    r = await http.post(URL, json=body, headers={"Authorization": "Bearer pbk_nothing_here"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_key"
    r = await http.post(URL, json=body, headers={"Authorization": gateway.keys["mes1000"]})
    assert r.status_code == 401
    r = await http.post(URL, json=body, headers=gateway.auth("sup1000"))
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden_role"
    r = await http.post(URL, json=body, headers=gateway.auth("mes2000"))
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden_plant"
    dead = await gateway.intake.inbox.get(int(r.headers["X-Inbox-Id"]))
    assert dead is not None and dead.status == "dead" and "may not touch plant '1000'" in (dead.reason or "")


async def test_field_errors_and_limits(gateway: Gateway, http: httpx.AsyncClient) -> None:
    order = new_order()
    h = gateway.auth("mes1000")
    r = await http.post(URL, json=wire(order, "operation_started", occurred_at="2026-11-26T10:15:00"), headers=h)
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["status"] == 422 and err["fields"][0]["loc"] == ["occurred_at"] and "UTC offset" in err["message"]
    r = await http.post(URL, json=wire(order, "operation_confirmed", operation="0010"), headers=h)
    assert r.status_code == 422 and "yield_qty" in r.json()["error"]["message"]
    r = await http.post(URL, content=b"{not json", headers={**h, "Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_json"
    big = wire(order, "quality_hold", reason="x" * (1024 * 1024 + 10))
    r = await http.post(URL, json=big, headers=h)
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"

    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(20):
            yield b" " * 65536
    r = await http.post(URL, content=chunks(), headers=h)
    assert r.status_code == 413
    dead = await gateway.intake.inbox.get(int(r.headers["X-Inbox-Id"]))
    assert dead is not None and dead.status == "dead" and "larger than" in (dead.reason or "")


async def test_openapi_has_an_example_per_event_type(http: httpx.AsyncClient) -> None:
    spec = (await http.get("/openapi.json")).json()
    body = spec["paths"]["/v1/plant/events"]["post"]["requestBody"]["content"]["application/json"]
    from plantbridge.canonical.events import EventType

    assert {t.value for t in EventType} <= set(body["examples"])
    assert "PlantEvent" in spec["components"]["schemas"]
    assert (await http.get("/docs")).status_code == 200
