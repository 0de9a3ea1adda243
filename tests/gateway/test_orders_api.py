"""The supervisor API and CLI: orders, exceptions, levers, inbox; each action audited with the identity."""

from __future__ import annotations

import asyncio

import httpx
from temporalio.client import Client
from typer.testing import CliRunner

from plantbridge.canonical import OrderState
from plantbridge.client import order_summary, start_order
from plantbridge.connectors.memory import MemoryStore
from plantbridge.store import AuditTrail, Database
from plantbridge.workers.supervisor_cli import exceptions_app, keys_app, orders_app
from tests.conftest import fast_policy, new_order, qty
from tests.gateway.conftest import Gateway, eventually, wire


async def test_order_read_auth_and_plants(gateway: Gateway, http: httpx.AsyncClient, client: Client) -> None:
    order = new_order()
    await start_order(client, order, fast_policy())
    r = await http.get(f"/v1/orders/1000/{order.number}", headers=gateway.auth("sup1000"))
    assert r.status_code == 200 and r.json()["state"] == "released"
    assert r.json()["summary"]["order"]["number"] == order.number
    r = await http.get(f"/v1/orders/1000/{order.number.zfill(12)}", headers=gateway.auth("sup_all"))
    assert r.status_code == 200
    assert (await http.get(f"/v1/orders/1000/{order.number}")).status_code == 401
    r = await http.get(f"/v1/orders/1000/{order.number}", headers=gateway.auth("mes1000"))
    assert r.status_code == 403
    other = new_order(plant="2000")
    await start_order(client, other, fast_policy())
    r = await http.get(f"/v1/orders/2000/{other.number}", headers=gateway.auth("sup1000"))
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden_plant"
    r = await http.post(f"/v1/orders/2000/{other.number}/cancel", json={}, headers=gateway.auth("sup1000"))
    assert r.status_code == 403
    r = await http.get("/v1/orders/1000/99999998", headers=gateway.auth("sup1000"))
    assert r.status_code == 404 and r.json()["error"]["code"] == "order_not_found"
    r = await http.get("/v1/orders/10000/1", headers=gateway.auth("sup1000"))
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["loc"] == ["path", "plant"]
    r = await http.get("/v1/orders", params={"state": "nonsense"}, headers=gateway.auth("sup1000"))
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["loc"] == ["query", "state"]

    async def listed() -> bool:
        r = await http.get("/v1/orders", params={"plant": "1000", "state": "released"},
                           headers=gateway.auth("sup1000"))
        return order.number in {o["order"] for o in r.json()["orders"]}

    await eventually(listed)
    r = await http.get("/v1/orders", headers=gateway.auth("sup1000"))
    assert {o["plant"] for o in r.json()["orders"]} == {"1000"}
    assert (await http.get("/v1/orders", params={"plant": "2000"}, headers=gateway.auth("sup1000"))).status_code == 403


async def _open_exception(gateway: Gateway, http: httpx.AsyncClient, client: Client,
                          reference: MemoryStore) -> tuple[str, dict[str, object]]:
    order = new_order()
    await reference.add_rule("erp", "confirm_operation", order=order.number, code="RU/505",
                             message="Posting period 011/2026 is not open for company code 1000")
    await start_order(client, order, fast_policy())
    r = await http.post("/v1/plant/events", json=wire(order, "operation_confirmed", operation="0010",
                                                      yield_qty=qty(10)), headers=gateway.auth("mes1000"))
    assert r.json()["erp"]["status"] == "rejected"
    sup = gateway.auth("sup1000")
    found: list[dict[str, object]] = []

    async def listed() -> bool:
        r = await http.get("/v1/exceptions", params={"plant": "1000"}, headers=sup)
        found[:] = [e for o in r.json()["orders"] if o["order"] == order.number for e in o["exceptions"]]
        return bool(found)

    await eventually(listed)
    return order.number, found[0]


async def test_resolve_through_api_and_cli_is_audited(
    gateway: Gateway, http: httpx.AsyncClient, client: Client, reference: MemoryStore, db: Database,
    temporal_server: object,
) -> None:
    sup = gateway.auth("sup1000")
    number, exc = await _open_exception(gateway, http, client, reference)
    assert exc["code"] == "RU/505" and "Posting period" in str(exc["message"]) and float(str(exc["age_s"])) >= 0
    assert (await http.get("/v1/exceptions", params={"plant": "2000"}, headers=sup)).status_code == 403

    base = f"/v1/orders/1000/{number}/exceptions"
    r = await http.post(f"{base}/{exc['id']}/resolve", json={"action": "explode"}, headers=sup)
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["loc"] == ["action"]
    r = await http.post(f"{base}/EXC-404/resolve", json={"action": "skip"}, headers=sup)
    assert r.status_code == 404
    r = await http.post(f"{base}/{exc['id']}/resolve", json={"action": "skip"}, headers=gateway.auth("mes1000"))
    assert r.status_code == 403
    r = await http.post(f"{base}/{exc['id']}/resolve", json={"action": "skip", "comment": "posted in batch"},
                        headers=sup)
    assert r.status_code == 202 and r.json()["by"] == gateway.names["sup1000"]
    await eventually(lambda: _status(client, "1000", number, str(exc["id"]), "skipped"))
    r = await http.post(f"{base}/{exc['id']}/resolve", json={"action": "skip"}, headers=sup)
    assert r.status_code == 409
    summary = await order_summary(client, "1000", number)
    assert summary.exceptions[0].resolved_by == gateway.names["sup1000"]
    records = await AuditTrail(db).records(workflow_id=f"production-order:1000:{number}")
    assert ("api.resolve_exception", gateway.names["sup1000"]) in {(r.action, r.actor) for r in records}

    number2, exc2 = await _open_exception(gateway, http, client, reference)
    runner = CliRunner()
    address = temporal_server.address  # type: ignore[attr-defined]
    result = await asyncio.to_thread(
        runner.invoke, exceptions_app,
        ["resolve", "1000", number2, str(exc2["id"]), "--action", "override", "--document", "4711/1",
         "--by", "anna", "--temporal", address, "--store-url", db.url])
    assert result.exit_code == 0, result.output
    await eventually(lambda: _status(client, "1000", number2, str(exc2["id"]), "overridden"))
    summary = await order_summary(client, "1000", number2)
    assert summary.exceptions[0].resolved_by == "anna"
    records = await AuditTrail(db).records(workflow_id=f"production-order:1000:{number2}")
    assert ("cli.resolve_exception", "anna") in {(r.action, r.actor) for r in records}

    shown = await asyncio.to_thread(runner.invoke, orders_app, ["show", "1000", number2, "--temporal", address])
    assert shown.exit_code == 0 and number2 in shown.output and "operations" in shown.output
    listed = await asyncio.to_thread(runner.invoke, exceptions_app, ["list", "--plant", "1000", "--temporal", address])
    assert listed.exit_code == 0, listed.output


async def _status(client: Client, plant: str, order: str, exc_id: str, status: str) -> bool:
    s = await order_summary(client, plant, order)
    return any(e.id == exc_id and e.status == status for e in s.exceptions)


async def test_hold_release_cancel_and_inbox(gateway: Gateway, http: httpx.AsyncClient, client: Client,
                                             db: Database) -> None:
    order = new_order()
    await start_order(client, order, fast_policy())
    sup = gateway.auth("sup1000")
    url = f"/v1/orders/1000/{order.number}"
    assert (await http.post(f"{url}/release-hold", json={}, headers=sup)).status_code == 409
    r = await http.post("/v1/plant/events", json=wire(order, "quality_hold", reason="porosity"),
                        headers=gateway.auth("mes1000"))
    assert r.json()["status"] == "accepted"
    r = await http.post(f"{url}/release-hold", json={"reason": "re-inspected"}, headers=sup)
    assert r.status_code == 202
    await eventually(lambda: _no_hold(client, order.plant, order.number))
    assert (await http.post(f"{url}/cancel", content=b"", headers=sup)).status_code == 202
    records = await AuditTrail(db).records(workflow_id=f"production-order:1000:{order.number}")
    assert {("api.release_hold", gateway.names["sup1000"]), ("api.cancel_order", gateway.names["sup1000"])} <= {
        (r.action, r.actor) for r in records}

    r = await http.get("/v1/inbox", params={"status": "dead"}, headers=sup)
    assert r.status_code == 200 and all(m["status"] == "dead" and m["reason"] for m in r.json()["messages"])
    assert all(m["plant"] == "1000" for m in r.json()["messages"])
    assert (await http.get("/v1/inbox", headers=gateway.auth("mes1000"))).status_code == 403
    r = await http.get("/v1/inbox", params={"status": "lost"}, headers=sup)
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["loc"] == ["query", "status"]


async def test_release_hold_of_a_cancelled_order_is_refused(gateway: Gateway, http: httpx.AsyncClient,
                                                             client: Client) -> None:
    """A cancelled order keeps its hold record: releasing it is 409, and the saga still answers (the signal would
    ask for a transition out of `cancelled`, which fails the saga's workflow task; found by the contract run)."""
    order = new_order()
    await start_order(client, order, fast_policy())
    sup = gateway.auth("sup1000")
    url = f"/v1/orders/1000/{order.number}"
    r = await http.post("/v1/plant/events", json=wire(order, "quality_hold", reason="porosity"),
                        headers=gateway.auth("mes1000"))
    assert r.json()["status"] == "accepted"
    assert (await http.post(f"{url}/cancel", json={"reason": "scrapped"}, headers=sup)).status_code == 202

    async def cancelled() -> bool:
        return (await order_summary(client, order.plant, order.number)).state is OrderState.CANCELLED

    await eventually(cancelled)
    r = await http.post(f"{url}/release-hold", json={}, headers=sup)
    assert r.status_code == 409 and r.json()["error"]["code"] == "order_ended", r.text
    r = await http.get(url, headers=sup)
    assert r.status_code == 200 and r.json()["state"] == "cancelled", r.text


async def _no_hold(client: Client, plant: str, order: str) -> bool:
    return (await order_summary(client, plant, order)).hold is None


async def test_keys_cli(db: Database) -> None:
    runner = CliRunner()
    made = await asyncio.to_thread(runner.invoke, keys_app, ["create", "--name", "cli-key", "--role", "edge",
                                                             "--plants", "1000,2000", "--store-url", db.url])
    assert made.exit_code == 0, made.output
    key = made.output.strip().splitlines()[-1]
    assert key.startswith("pbk_")
    from plantbridge.store import ApiKeys

    info = await ApiKeys(db).authenticate(key)
    assert info is not None and info.plants == ("1000", "2000") and info.role == "edge"
    listed = await asyncio.to_thread(runner.invoke, keys_app, ["list", "--store-url", db.url],
                                     env={"COLUMNS": "240"})  # a table wide enough for every column
    assert "cli-key" in listed.output and key not in listed.output
    revoked = await asyncio.to_thread(runner.invoke, keys_app, ["revoke", "cli-key", "--store-url", db.url])
    assert revoked.exit_code == 0 and await ApiKeys(db).authenticate(key) is None
