"""At the door: rate limits (a token bucket per key, 429 + Retry-After; unknown keys cost bounded store
reads), a cap on orders per IDoc, a resent event id with other content (409 conflict, kept dead), an event
stamped in the future (422), and accepted answers carrying the order's state."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from temporalio.client import Client

from plantbridge.client import start_order
from plantbridge.gateway.app import create_app
from plantbridge.gateway.deps import GatewayDeps
from plantbridge.gateway.ratelimit import Rate, RateLimiter
from plantbridge.store import ApiKeys, Database, Inbox
from tests.conftest import fast_policy, new_order, qty
from tests.gateway.conftest import Gateway, gateway_policy, wire
from tests.support import serve_app


def test_token_bucket_refills_at_its_rate() -> None:
    now = [100.0]
    limiter = RateLimiter(rates={"edge": Rate(2.0, 3)}, clock=lambda: now[0])
    assert [limiter.for_key("k", "edge") for _ in range(4)] == [0, 0, 0, 1]
    now[0] += 0.5  # one token back
    assert limiter.for_key("k", "edge") == 0 and limiter.for_key("k", "edge") == 1
    assert limiter.for_key("other", "edge") == 0  # per key


async def test_rate_limit_per_key_and_unknown_key_lookups(client: Client, db: Database) -> None:
    deps = GatewayDeps(client=client, db=db, policy_for=gateway_policy, redrive_on_startup=False,
                       rate_limits={"supervisor": Rate(0.5, 3)}, lookup_rate=Rate(0.5, 5))
    app = create_app(deps)
    served = await serve_app(app)
    _, key = await ApiKeys(db).create(f"sup-rl-{uuid.uuid4().hex[:6]}", "supervisor", ["1000"])
    try:
        async with httpx.AsyncClient(base_url=served.url, timeout=30) as http:
            codes = [(await http.get("/v1/orders", headers={"Authorization": f"Bearer {key}"})).status_code
                     for _ in range(5)]
            assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429], codes
            r = await http.get("/v1/orders", headers={"Authorization": f"Bearer {key}"})
            assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
            assert r.json()["error"]["code"] == "rate_limited"
            keys: ApiKeys = app.state.keys
            before = keys.lookups
            random_keys = [f"pbk_{uuid.uuid4().hex[:12]}_{uuid.uuid4().hex}" for _ in range(30)]
            answers = [(await http.get("/v1/orders", headers={"Authorization": f"Bearer {k}"})).status_code
                       for k in random_keys]
            assert answers.count(401) <= 6 and answers.count(429) >= 24, answers  # the burst, then 429
            assert keys.lookups - before <= 6  # the store read at most the look-up burst
            again = await http.get("/v1/orders", headers={"Authorization": f"Bearer {random_keys[0]}"})
            assert again.status_code == 401  # remembered as unknown: no read, no token needed
            assert keys.lookups - before <= 6
            garbage = await http.get("/v1/orders", headers={"Authorization": "Bearer pbk_nothex_x"})
            assert garbage.status_code == 401
    finally:
        await served.stop()


async def test_idoc_with_too_many_orders_is_refused(db: Database, gateway: Gateway,
                                                    http: httpx.AsyncClient) -> None:
    xml = (Path(__file__).parent.parent / "fixtures" / "idoc" / "LOIPRO05.xml").read_bytes()  # one order
    gateway.deps.max_orders_per_idoc = 0
    try:
        r = await http.post("/v1/erp/sap/idoc", content=xml,
                            headers={**gateway.auth("erp_all"), "Content-Type": "application/xml"})
    finally:
        gateway.deps.max_orders_per_idoc = 200
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_many_orders", r.text
    row = await Inbox(db).get(int(r.headers["X-Inbox-Id"]))
    assert row is not None and row.status == "dead"


async def test_resent_event_with_other_content_is_a_conflict(
    client: Client, db: Database, gateway: Gateway, http: httpx.AsyncClient,
) -> None:
    order = new_order()
    await start_order(client, order, fast_policy())
    first = wire(order, "operation_confirmed", operation="0010", yield_qty=qty(1))
    r1 = await http.post("/v1/plant/events", json=first, headers=gateway.auth("mes1000"))
    assert r1.status_code in (200, 202) and r1.json()["status"] == "accepted"
    assert r1.json()["order_state"] is not None
    same = await http.post("/v1/plant/events", json=first, headers=gateway.auth("mes1000"))
    assert same.status_code == 200 and same.json()["status"] == "duplicate"
    assert same.json()["order_state"] is not None  # accepted or duplicate: the order's current state
    changed = {**first, "yield_qty": qty(7), "work_center": "ASSY-01"}
    r2 = await http.post("/v1/plant/events", json=changed, headers=gateway.auth("mes1000"))
    assert r2.status_code == 409, r2.text
    err = r2.json()["error"]
    assert err["code"] == "conflict" and {f["loc"][0] for f in err["fields"]} == {"yield_qty", "work_center"}
    row = await Inbox(db).get(int(r2.headers["X-Inbox-Id"]))
    assert row is not None and row.status == "dead" and b'"7"' in row.body  # kept, for a person


async def test_event_from_the_future_is_refused(client: Client, gateway: Gateway, http: httpx.AsyncClient) -> None:
    order = new_order()
    future = (datetime.now(UTC) + timedelta(days=5 * 365)).isoformat()
    r = await http.post("/v1/plant/events", json=wire(order, "operation_started", operation="0010",
                                                      occurred_at=future), headers=gateway.auth("mes1000"))
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["fields"][0]["loc"] == ["occurred_at"] and "clock" in err["message"]
    near = (datetime.now(UTC) + timedelta(seconds=30)).isoformat()  # within the skew
    await start_order(client, order, fast_policy())
    ok = await http.post("/v1/plant/events", json=wire(order, "operation_started", operation="0010",
                                                       occurred_at=near), headers=gateway.auth("mes1000"))
    assert ok.status_code in (200, 202), ok.text
