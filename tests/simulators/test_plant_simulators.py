"""The MES, QMS and WMS simulators over real HTTP: uvicorn in background threads, httpx as client,
and a tiny ASGI receiver standing in for plantbridge's gateway."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from plantbridge_devtools.simulators.common.server import ThreadedServer
from plantbridge_devtools.simulators.mes.server import MesServer
from plantbridge_devtools.simulators.qms.server import QmsServer
from plantbridge_devtools.simulators.wms.server import WmsServer

MES_KEY = {"X-API-Key": "mes-dev-key"}
QMS_KEY = {"X-API-Key": "qms-dev-key"}
WMS_KEY = {"X-API-Key": "wms-dev-key"}
EVENT_KEYS = {
    "event_id", "event_type", "source", "plant", "order", "occurred_at", "operation", "work_center", "yield_qty",
    "scrap_qty", "rework_qty", "reason", "final", "activities", "personnel", "material", "quantity", "batch",
    "storage_location", "equipment", "passed", "characteristics", "decision", "priority", "description",
}


class Receiver:
    """A minimal ASGI app collecting plant events; answers like plantbridge's gateway."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.lock = threading.Lock()
        self.server = ThreadedServer(app=self.app, name="receiver")

    async def app(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        event = json.loads(body)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        with self.lock:
            self.received.append((headers, event))
        answer = json.dumps({"event_id": event["event_id"], "status": "accepted", "order_state": "in_progress",
                             "erp": {"status": "pending", "documents": []}, "reason": None}).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": answer})

    @property
    def url(self) -> str:
        return f"{self.server.url}/v1/plant/events"

    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [e for _, e in self.received]

    def wait_for(self, count: int, timeout_s: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            events = self.events()
            if len(events) >= count:
                return events
            time.sleep(0.02)
        raise AssertionError(f"expected {count} events, got {len(self.events())}: {self.events()}")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.server.start()
    yield r
    r.server.stop()


@pytest.fixture
def mes(tmp_path: Path, receiver: Receiver) -> Iterator[httpx.Client]:
    with MesServer(str(tmp_path / "mes.db"), outbound_url=receiver.url, outbound_token="tok-1",
                   retry_initial_s=0.05, retry_max_s=0.3) as server:
        with httpx.Client(base_url=server.url, headers=MES_KEY, timeout=10) as http:
            yield http


@pytest.fixture
def qms(tmp_path: Path) -> Iterator[httpx.Client]:
    with QmsServer(str(tmp_path / "qms.db")) as server, \
            httpx.Client(base_url=server.url, headers=QMS_KEY, timeout=10) as http:
        yield http


@pytest.fixture
def wms(tmp_path: Path) -> Iterator[httpx.Client]:
    with WmsServer(str(tmp_path / "wms.db")) as server, \
            httpx.Client(base_url=server.url, headers=WMS_KEY, timeout=10) as http:
        yield http


def dispatch(mes: httpx.Client, order: str = "1004157", steps: tuple[str, ...] = ("0010", "0020")) -> dict[str, Any]:
    resources = ["L1-ASSY", "L1-PACK", "L2-MACH"]
    body = {
        "orderNo": order, "plant": "1000", "material": "FG-100", "quantity": "100", "unit": "PCS",
        "routing": [{"step": s, "resource": resources[i % 3], "description": f"step {s}"} for i, s in enumerate(steps)],
        "bom": [{"material": "RM-10", "quantity": "200", "unit": "PCS", "step": steps[0]}],
    }
    response = mes.post("/api/v2/workorders", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


SCRIPT = {
    "orderNo": "1004157",
    "startAt": "2026-11-26T08:00:00+01:00",
    "actions": [
        {"do": "start", "step": "0010"},
        {"do": "report", "step": "0010", "good": 40, "scrap": 2, "scrapCode": "S-SCRATCH", "chunks": 2,
         "laborMin": 30, "machineMin": 20, "everyMin": 10},
        {"do": "downtime", "code": "D-MECH", "minutes": 15, "equipment": "PRESS-01"},
        {"do": "maintenance", "equipment": "PRESS-01", "priority": 2, "text": "hydraulic leak"},
        {"do": "finish", "step": "0010", "good": 58},
        {"do": "start", "step": "0020"},
        {"do": "hold", "code": "H-QUAL", "text": "burr on edge"},
    ],
}


# --- MES -------------------------------------------------------------------------------------


def test_mes_script_emits_wire_events_in_order_with_local_codes(mes: httpx.Client, receiver: Receiver) -> None:
    wo = dispatch(mes)
    assert wo["workOrderId"] == "WO-000001" and wo["status"] == "DISPATCHED"
    run = mes.post("/admin/run", json=SCRIPT).json()
    assert run["ok"], run
    expected = [
        ("operation_started", "0010"), ("operation_confirmed", "0010"), ("operation_confirmed", "0010"),
        ("downtime_started", None), ("downtime_ended", None), ("maintenance_requested", None),
        ("operation_confirmed", "0010"), ("operation_started", "0020"), ("quality_hold", None),
    ]
    assert run["events"] == [f"mes1000-{i:06d}" for i in range(1, len(expected) + 1)]
    events = receiver.wait_for(len(expected))
    assert [(e["event_type"], e.get("operation")) for e in events] == expected
    assert [e["event_id"] for e in events] == run["events"]
    for headers, event in receiver.received:
        assert headers["authorization"] == "Bearer tok-1"
        assert set(event) <= EVENT_KEYS
        assert event["source"] == "mes-1000" and event["plant"] == "1000" and event["order"] == "1004157"
        assert re.search(r"[+-]\d\d:\d\d$", event["occurred_at"])
    started, first, second, down, up, maint, final, _, hold = events
    assert started["work_center"] == "L1-ASSY" and started["occurred_at"] == "2026-11-26T08:00:00+01:00"
    assert first["yield_qty"] == {"quantity": "20", "uom": "PCS"}
    assert first["scrap_qty"] == {"quantity": "1", "uom": "PCS"} and first["reason"] == "S-SCRATCH"
    assert first["activities"] == {"setup_min": "0", "machine_min": "10", "labor_min": "15"}
    assert first["final"] is False and second["occurred_at"] == "2026-11-26T08:11:00+01:00"
    assert down["reason"] == "D-MECH" and down["work_center"] == "L1-ASSY" and down["equipment"] == "PRESS-01"
    assert up["occurred_at"] == "2026-11-26T08:27:00+01:00"
    assert maint["priority"] == 2 and maint["description"] == "hydraulic leak"
    assert final["final"] is True and final["yield_qty"]["quantity"] == "58" and "scrap_qty" not in final
    assert hold["reason"] == "H-QUAL"

    state = mes.get(f"/api/v2/workorders/{wo['workOrderId']}").json()
    assert state["status"] == "ON_HOLD"
    step = state["routing"][0]
    assert (step["status"], step["goodQty"], step["scrapQty"], step["scrap"]) == ("FINISHED", "98", "2",
                                                                                   {"S-SCRATCH": "2"})
    # the receiver's answers are kept per event
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        outbox = mes.get("/admin/outbox").json()["items"]
        if all(o["status"] == "delivered" for o in outbox):
            break
        time.sleep(0.05)
    assert [o["response"]["event_id"] for o in outbox] == run["events"]
    assert all(o["response"]["status"] == "accepted" for o in outbox)

    ack = mes.post("/api/v2/acknowledgements", json={"transactionRef": "mes1000-000002", "result": "OK",
                                                     "erpDocument": "ProdnOrdConf2 1234/1", "text": "posted"})
    assert ack.status_code == 201 and ack.json()["matched"] is True and ack.json()["orderNo"] == "1004157"
    again = mes.post("/api/v2/acknowledgements", json={"transactionRef": "mes1000-000002", "result": "NOK",
                                                       "text": "reversed"})
    assert again.status_code == 200 and again.json()["revision"] == 2
    listed = mes.get("/api/v2/acknowledgements", params={"orderNo": "1004157"}).json()
    assert listed["count"] == 1 and listed["items"][0]["result"] == "NOK"


def test_mes_outbox_retries_in_order_when_receiver_is_down(mes: httpx.Client, receiver: Receiver) -> None:
    receiver.server.stop()
    wo = dispatch(mes)
    wo_id = wo["workOrderId"]
    assert mes.post(f"/api/v2/workorders/{wo_id}/steps/0010/start").status_code == 200
    for _ in range(3):
        r = mes.post(f"/api/v2/workorders/{wo_id}/steps/0010/report", json={"goodQty": "10", "laborMin": "5"})
        assert r.status_code == 200, r.text
    time.sleep(0.6)  # a few failed attempts
    pending = mes.get("/admin/outbox", params={"status": "pending"}).json()["items"]
    assert len(pending) == 4 and pending[0]["attempts"] >= 2 and pending[0]["last_error"]
    assert pending[1]["attempts"] == 0  # later events wait behind the first
    receiver.server.start()
    events = receiver.wait_for(4)
    time.sleep(0.3)
    ids = [e["event_id"] for e in receiver.events()]
    assert ids == [f"mes1000-{i:06d}" for i in range(1, 5)]  # in order, none twice
    assert mes.get("/admin/outbox", params={"status": "pending"}).json()["count"] == 0
    assert events[0]["event_type"] == "operation_started"


def test_mes_conflicts_and_validation(mes: httpx.Client) -> None:
    wo_id = dispatch(mes)["workOrderId"]
    same = mes.post("/api/v2/workorders", json={
        "orderNo": "1004157", "material": "OTHER", "quantity": "1", "unit": "PCS",
        "routing": [{"step": "0010", "resource": "L1-ASSY"}]})
    assert same.status_code == 409 and same.json()["errorCode"] == "WO-409-DUP"
    assert mes.post(f"/api/v2/workorders/{wo_id}/steps/0010/report", json={"goodQty": "1"}).status_code == 409
    hold = mes.post(f"/api/v2/workorders/{wo_id}/hold", json={"reasonCode": "H-MATL"})
    assert hold.status_code == 200 and hold.json()["status"] == "ON_HOLD"
    blocked = mes.post(f"/api/v2/workorders/{wo_id}/steps/0010/start")
    assert blocked.status_code == 409 and blocked.json()["errorCode"] == "WO-409"
    assert mes.post(f"/api/v2/workorders/{wo_id}/unhold").json()["status"] == "DISPATCHED"
    assert mes.post(f"/api/v2/workorders/{wo_id}/unhold").status_code == 409
    assert mes.post(f"/api/v2/workorders/{wo_id}/recall", json={"reason": "cancelled in ERP"}).status_code == 200
    assert mes.post(f"/api/v2/workorders/{wo_id}/recall").json()["status"] == "RECALLED"  # repeat is a no-op
    finish = mes.post(f"/api/v2/workorders/{wo_id}/steps/0010/finish", json={"goodQty": "5"})
    assert finish.status_code == 409 and finish.json()["errorCode"] == "WO-409"
    assert "RECALLED" in finish.json()["message"]
    assert mes.post(f"/api/v2/workorders/{wo_id}/hold").status_code == 409
    assert mes.get("/api/v2/workorders/WO-999999").json()["errorCode"] == "WO-404"
    bad = mes.post("/api/v2/workorders", json={"orderNo": "1", "material": "X", "quantity": "1", "unit": "ST",
                                               "routing": []})
    assert bad.status_code == 422 and bad.json()["errorCode"] == "WO-422"
    assert {d["field"] for d in bad.json()["details"]} == {"unit", "routing"}
    # a recalled order may be dispatched again
    assert dispatch(mes)["workOrderId"] == "WO-000002"
    downtime = mes.post("/api/v2/resources/L1-ASSY/downtime", json={"action": "END"})
    assert downtime.status_code == 409 and downtime.json()["errorCode"] == "RES-409"
    assert httpx.get(f"{mes.base_url}/api/v2/workorders").json()["errorCode"] == "AUTH-401"


def test_mes_faults(mes: httpx.Client) -> None:
    assert mes.put("/admin/faults", json={"error_503_ratio": 1.0}).status_code == 200
    down = mes.get("/api/v2/workorders")
    assert down.status_code == 503 and down.json()["errorCode"] == "SYS-503" and down.headers["retry-after"]
    assert mes.get("/admin/health").status_code == 200  # admin is never faulted
    mes.put("/admin/faults", json={"latency_ms": 200})
    started = time.monotonic()
    assert mes.get("/api/v2/workorders").status_code == 200
    assert time.monotonic() - started >= 0.2
    mes.delete("/admin/faults")
    mes.put("/admin/faults", json={"error_503_ratio": 0.5, "seed": 7})
    first = [mes.get("/api/v2/workorders").status_code for _ in range(12)]
    mes.put("/admin/faults", json={"error_503_ratio": 0.5, "seed": 7})
    assert [mes.get("/api/v2/workorders").status_code for _ in range(12)] == first
    assert set(first) == {200, 503}


# --- QMS -------------------------------------------------------------------------------------


def test_qms_lot_results_hold_disposition(qms: httpx.Client) -> None:
    lot_body = {"orderRef": "1004157", "material": "FG-100", "lotQty": "100", "unit": "pcs", "origin": "FINAL",
                "externalRef": "pb-1", "plan": [
                    {"charCode": "DIA-OUT", "unit": "mm", "target": "10.00", "lower": "9.95", "upper": "10.05"},
                    {"charCode": "VISUAL", "qualitative": True}]}
    created = qms.post("/qms/v1/lots", json=lot_body)
    assert created.status_code == 201, created.text
    lot = created.json()
    assert lot["lotId"] == "QL-000001" and lot["status"] == "OPEN"
    assert qms.post("/qms/v1/lots", json=lot_body).status_code == 200  # same externalRef: same lot
    assert qms.get("/qms/v1/lots", params={"order": "1004157"}).json()["count"] == 1

    partial = qms.post(f"/qms/v1/lots/{lot['lotId']}/results",
                       json={"results": [{"charCode": "DIA-OUT", "measured": "10.09", "unit": "mm"}]}).json()
    assert partial["status"] == "IN_INSPECTION" and partial["verdict"] == "REJECT"
    assert partial["results"][0]["verdict"] == "REJECT"
    unknown = qms.post(f"/qms/v1/lots/{lot['lotId']}/results",
                       json={"results": [{"charCode": "NOPE", "measured": "1", "verdict": "ACCEPT"}]})
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "CHAR_UNKNOWN"
    done = qms.post(f"/qms/v1/lots/{lot['lotId']}/results", json={"results": [
        {"charCode": "DIA-OUT", "measured": "10.01", "unit": "mm"},
        {"charCode": "VISUAL", "measured": "burr", "verdict": "REJECT", "inspector": "qa-3"}]}).json()
    assert done["status"] == "RESULTS_COMPLETE" and done["verdict"] == "REJECT"

    hold = qms.post("/qms/v1/holds", json={"orderRef": "1004157", "lotId": lot["lotId"], "material": "FG-100",
                                          "qty": "100", "unit": "pcs", "reasonCode": "QH-VIS", "text": "burr"})
    assert hold.status_code == 201 and hold.json()["status"] == "ACTIVE"
    other = qms.post("/qms/v1/holds", json={"orderRef": "1004157", "reasonCode": "QH-SUSP"}).json()
    assert qms.delete(f"/qms/v1/holds/{other['holdId']}", params={"releasedBy": "anna"}).json()["status"] == "RELEASED"
    assert qms.get("/qms/v1/holds", params={"order": "1004157", "status": "ACTIVE"}).json()["count"] == 1

    bad = qms.post(f"/qms/v1/lots/{lot['lotId']}/disposition", json={"code": "XX"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "VALIDATION_FAILED"
    decided = qms.post(f"/qms/v1/lots/{lot['lotId']}/disposition", json={"code": "RW", "decidedBy": "qa-lead"})
    assert decided.status_code == 200
    body = decided.json()
    assert body["status"] == "DISPOSITIONED" and body["disposition"]["code"] == "RW"
    assert body["disposition"]["qty"] == "100" and body["disposition"]["releasedHolds"] == [hold.json()["holdId"]]
    assert qms.get(f"/qms/v1/holds/{hold.json()['holdId']}").json()["releasedBy"] == "DISPOSITION"
    again = qms.post(f"/qms/v1/lots/{lot['lotId']}/disposition", json={"code": "SC"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "LOT_ALREADY_DISPOSITIONED"
    assert qms.get("/qms/v1/lots/QL-999").json()["error"]["code"] == "LOT_NOT_FOUND"
    assert httpx.get(f"{qms.base_url}/qms/v1/lots", headers={"X-API-Key": "wrong"}).status_code == 401
    qms.put("/admin/faults", json={"error_503_ratio": 1.0, "paths": ["/qms/v1/holds"]})
    assert qms.get("/qms/v1/holds").status_code == 503
    assert qms.get("/qms/v1/lots").status_code == 200


# --- WMS -------------------------------------------------------------------------------------


def test_wms_staging_blocks_transfers_idempotency(wms: httpx.Client) -> None:
    for material, location, qty in (("RM-10", "RM-A01", "500"), ("FG-100", "FG-01", "20"), ("SP-7", "SP-01", "3")):
        assert wms.put("/admin/stock", json={"material": material, "location": location, "qty": qty,
                                             "unit": "EA"}).status_code == 200

    staging = wms.post("/wms/api/staging-requests", headers={"Idempotency-Key": "stg-1"}, json={
        "reference": "pb:1004157:stage", "orderRef": "1004157", "toLocation": "LINE-L1",
        "items": [{"material": "RM-10", "qty": "200", "unit": "EA"}]})
    assert staging.status_code == 201, staging.text
    doc = staging.json()
    assert doc["stagingId"] == "STG-000001" and doc["tasks"][0]["fromLocation"] == "RM-A01"
    replay = wms.post("/wms/api/staging-requests", headers={"Idempotency-Key": "stg-1"}, json={
        "reference": "pb:1004157:stage", "orderRef": "1004157", "toLocation": "LINE-L1",
        "items": [{"material": "RM-10", "qty": "200", "unit": "EA"}]})
    assert replay.status_code == 201 and replay.json() == doc and replay.headers["idempotent-replayed"] == "true"
    dup = wms.post("/wms/api/staging-requests", json={
        "reference": "pb:1004157:stage", "orderRef": "1004157",
        "items": [{"material": "RM-10", "qty": "200", "unit": "EA"}]})
    assert dup.status_code == 409 and dup.json()["title"] == "DUPLICATE_REFERENCE"
    assert dup.headers["content-type"].startswith("application/problem+json")
    assert dup.json()["errors"] == [{"stagingId": "STG-000001"}]
    found = wms.get("/wms/api/staging-requests", params={"reference": "pb:1004157:stage"}).json()
    assert found["count"] == 1 and found["items"][0]["stagingId"] == "STG-000001"
    task = doc["tasks"][0]["taskId"]
    staged = wms.post(f"/wms/api/staging-requests/STG-000001/tasks/{task}/confirm").json()
    assert staged["status"] == "STAGED"
    rm = wms.get("/wms/api/stock", params={"material": "RM-10"}).json()
    assert {x["location"]: x["onHand"] for x in rm["locations"]} == {"RM-A01": "300", "LINE-L1": "200"}

    block = wms.post("/wms/api/stock-blocks", headers={"Idempotency-Key": "blk-1"}, json={
        "reference": "pb:1004157:block", "material": "FG-100", "location": "FG-01", "qty": "15",
        "orderRef": "1004157", "reasonCode": "QC-HOLD"})
    assert block.status_code == 201 and block.json()["status"] == "ACTIVE"
    stock = wms.get("/wms/api/stock", params={"material": "FG-100"}).json()
    assert (stock["onHand"], stock["blocked"], stock["available"]) == ("20", "15", "5")
    assert stock["activeBlocks"] == [block.json()["blockId"]]
    short = wms.post("/wms/api/transfers", json={"reference": "t-0", "material": "FG-100", "qty": "10",
                                                "unit": "EA", "fromLocation": "FG-01", "toLocation": "DOCK-01"})
    assert short.status_code == 409 and short.json()["title"] == "STOCK_BLOCKED"
    ready = wms.post("/wms/api/shipment-readiness", json={"reference": "sr-1", "orderRef": "1004157",
                                                         "material": "FG-100", "qty": "10", "unit": "EA"}).json()
    assert ready["status"] == "BLOCKED" and ready["availableQty"] == "5"

    block_id = block.json()["blockId"]
    released = wms.post(f"/wms/api/stock-blocks/{block_id}/release", headers={"Idempotency-Key": "rel-1"})
    assert released.status_code == 200 and released.json()["status"] == "RELEASED"
    replayed = wms.post(f"/wms/api/stock-blocks/{block_id}/release", headers={"Idempotency-Key": "rel-1"})
    assert replayed.status_code == 200 and replayed.json() == released.json()
    again = wms.post(f"/wms/api/stock-blocks/{block_id}/release")
    assert again.status_code == 409 and again.json()["title"] == "BLOCK_NOT_ACTIVE"
    stock = wms.get("/wms/api/stock", params={"material": "FG-100"}).json()
    assert (stock["blocked"], stock["available"]) == ("0", "20")

    transfer_body = {"reference": "pb:1004157:gr", "material": "FG-100", "qty": "100", "unit": "EA",
                     "fromLocation": "PROD-OUT", "toLocation": "FG-01", "orderRef": "1004157"}
    moved = wms.post("/wms/api/transfers", headers={"Idempotency-Key": "trf-1"}, json=transfer_body)
    assert moved.status_code == 201 and moved.json()["status"] == "CONFIRMED"
    assert wms.post("/wms/api/transfers", headers={"Idempotency-Key": "trf-1"},
                    json=transfer_body).json() == moved.json()
    reused = wms.post("/wms/api/transfers", headers={"Idempotency-Key": "trf-1"},
                      json={**transfer_body, "qty": "5"})
    assert reused.status_code == 422 and reused.json()["title"] == "IDEMPOTENCY_KEY_REUSED"
    fg = wms.get("/wms/api/stock", params={"material": "FG-100", "location": "FG-01"}).json()
    assert fg["onHand"] == "120"  # moved once, not three times
    lookup = wms.get("/wms/api/references/pb:1004157:gr").json()
    assert lookup["items"][0]["type"] == "transfer" and lookup["items"][0]["id"] == moved.json()["transferId"]
    assert wms.get("/wms/api/references/unknown").status_code == 404

    reservation = wms.post("/wms/api/reservations", json={"reference": "res-1", "material": "SP-7", "qty": "5",
                                                          "unit": "EA", "equipment": "PRESS-01"}).json()
    assert reservation["status"] == "PARTIAL" and reservation["reservedQty"] == "3"
    assert wms.get("/wms/api/stock", params={"material": "SP-7"}).json()["available"] == "0"
    unit = wms.post("/wms/api/transfers", json={**transfer_body, "reference": "x", "unit": "KG"})
    assert unit.status_code == 422 and unit.json()["title"] == "UNIT_MISMATCH"
    invalid = wms.post("/wms/api/transfers", json={**transfer_body, "reference": "y", "toLocation": "NOWHERE"})
    assert invalid.status_code == 422 and invalid.json()["errors"][0]["field"] == "toLocation"
    assert httpx.get(f"{wms.base_url}/wms/api/stock").status_code == 401
    assert wms.post("/admin/reset").json() == {"reset": True}
    assert wms.get("/wms/api/stock").json()["count"] == 0
