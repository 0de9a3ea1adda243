"""The S/4HANA simulator over real HTTP: uvicorn in a background thread, httpx as the client."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from plantbridge_devtools.simulators.sap.server import SimulatorServer
from tests.support import free_port

PROD = "/sap/opu/odata/sap/API_PRODUCTION_ORDER_2_SRV/"
CONF = "/sap/opu/odata/sap/API_PROD_ORDER_CONFIRMATION_2_SRV/"
MATDOC = "/sap/opu/odata/sap/API_MATERIAL_DOCUMENT_SRV/"
QM = "/sap/opu/odata/sap/API_INSPECTIONLOT_SRV/"
PM = "/sap/opu/odata/sap/API_MAINTNOTIFICATION/"
AUTH = ("PLANTBRIDGE", "secret")


class Receiver:
    """A tiny webhook receiver collecting the JSON bodies and headers it is sent."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], dict[str, Any]]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                received.append((dict(self.headers.items()), json.loads(body)))
                self.send_response(202)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/events"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, event_type: str, timeout_s: float = 5.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = [body for _, body in self.received if body["type"] == event_type]
            if found:
                return found
            time.sleep(0.02)
        raise AssertionError(f"no {event_type} event received; got {self.received}")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Sap:
    """An httpx client for the simulator that handles the CSRF token like an SAP client must."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, auth=AUTH, headers={"Accept": "application/json"}, timeout=10)
        self.token = ""

    def fetch_token(self, root: str = PROD) -> str:
        response = self.http.get(root, headers={"X-CSRF-Token": "Fetch"})
        assert response.status_code == 200, response.text
        self.token = response.headers["x-csrf-token"]
        return self.token

    def post(self, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        headers = {"X-CSRF-Token": self.token or self.fetch_token(), **kwargs.pop("headers", {})}
        return self.http.post(path, json=body, headers=headers, **kwargs)

    def get(self, path: str, **params: str) -> httpx.Response:
        return self.http.get(path, params=params)

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        response = self.http.request(method, f"/admin{path}", json=body)
        assert response.status_code < 300, response.text
        return response.json()

    def order(self, number: str, **overrides: Any) -> dict[str, Any]:
        body = {
            "order": number,
            "plant": "1000",
            "material": "FG-100",
            "quantity": "100",
            "unit": "EA",
            "storage_location": "0001",
            "tolerance_pct": "10",
            "operations": [
                {"operation": "0010", "work_center": "MIX-01", "description": "Mix"},
                {"operation": "0020", "work_center": "PACK-01", "description": "Pack"},
            ],
            "components": [
                {
                    "item": "0010",
                    "material": "RM-1",
                    "quantity": "200",
                    "unit": "KG",
                    "storage_location": "0001",
                    "operation": "0010",
                },
                {
                    "item": "0020",
                    "material": "RM-2",
                    "quantity": "100",
                    "unit": "EA",
                    "storage_location": "0001",
                    "backflush": True,
                    "operation": "0020",
                },
            ],
            **overrides,
        }
        created: dict[str, Any] = self.admin("POST", "/orders", body)
        return created

    def release(self, number: str) -> httpx.Response:
        etag = self.get(f"{PROD}A_ProductionOrder_2('{number}')").headers["etag"]
        params = {"ManufacturingOrder": f"'{number}'"}
        return self.post(f"{PROD}ReleaseOrder", params=params, headers={"If-Match": etag})

    def confirm(self, number: str, operation: str, yield_qty: str, **extra: Any) -> httpx.Response:
        body = {
            "OrderID": number,
            "OrderOperation": operation,
            "ConfirmationYieldQuantity": yield_qty,
            "ExternalSystemConfirmation": str(uuid.uuid4()),
            **extra,
        }
        return self.post(f"{CONF}ProdnOrdConf2", body)


def error_of(response: httpx.Response) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["error"]
    return error


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    yield rec
    rec.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[SimulatorServer]:
    db = tmp_path_factory.mktemp("sap") / "sap.db"
    with SimulatorServer(str(db), webhook_url=receiver.url, webhook_headers={"Authorization": "Bearer hook"}) as s:
        yield s


@pytest.fixture
def sap(server: SimulatorServer, receiver: Receiver) -> Iterator[Sap]:
    client = Sap(server.url)
    client.admin("POST", "/reset")
    receiver.received.clear()
    yield client
    client.http.close()


# --- protocol ---------------------------------------------------------------------------------


def test_logon_csrf_fetch_required_and_expiry(sap: Sap) -> None:
    anonymous = httpx.get(f"{sap.url}{PROD}$metadata")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith('Basic realm="SAP NetWeaver Application Server')

    notification = {"NotificationText": "Motor overheats", "NotificationType": "M2"}
    missing = sap.http.post(f"{PM}MaintenanceNotification", json=notification)
    assert missing.status_code == 403
    assert missing.headers["x-csrf-token"] == "Required"
    assert missing.text == "CSRF token validation failed"

    fetched = sap.http.get(PM, headers={"X-CSRF-Token": "Fetch"})
    token = fetched.headers["x-csrf-token"]
    assert "SAP_SESSIONID_S4H_100" in sap.http.cookies
    assert sap.http.get(PM, headers={"X-CSRF-Token": "Fetch"}).headers["x-csrf-token"] == token  # same session
    assert (
        sap.http.post(f"{PM}MaintenanceNotification", json=notification, headers={"X-CSRF-Token": "wrong"}).status_code
        == 403
    )
    assert (
        sap.http.post(f"{PM}MaintenanceNotification", json=notification, headers={"X-CSRF-Token": token}).status_code
        == 201
    )

    assert sap.admin("POST", "/csrf/expire")["expired_sessions"] >= 1
    expired = sap.http.post(f"{PM}MaintenanceNotification", json=notification, headers={"X-CSRF-Token": token})
    assert expired.status_code == 403 and expired.headers["x-csrf-token"] == "Required"
    fresh = sap.http.get(PM, headers={"X-CSRF-Token": "Fetch"}).headers["x-csrf-token"]
    assert fresh != token
    assert (
        sap.http.post(f"{PM}MaintenanceNotification", json=notification, headers={"X-CSRF-Token": fresh}).status_code
        == 201
    )


def test_release_order_needs_the_current_etag(sap: Sap) -> None:
    sap.order("1000001")
    read = sap.get(
        f"{PROD}A_ProductionOrder_2('1000001')",
        **{"$expand": "to_ProductionOrderOperation,to_ProductionOrderComponent"},
    )
    assert read.status_code == 200
    order = read.json()["d"]
    etag = read.headers["etag"]
    assert etag == order["__metadata"]["etag"] == f"W/\"'{order['LastChangeDateTime']}'\""
    assert order["OrderIsReleased"] == "" and order["TotalQuantity"] == "100"
    assert order["MfgOrderPlannedStartDate"].startswith("/Date(") and order["MfgOrderPlannedStartTime"] == "PT06H00M00S"
    operations = order["to_ProductionOrderOperation"]["results"]
    assert [op["ManufacturingOrderOperation"] for op in operations] == ["0010", "0020"]
    assert operations[0]["OpPlannedTotalQuantity"] == "100.000"
    assert order["to_ProductionOrderComponent"]["results"][1]["MatlCompIsMarkedForBackflush"] is True

    params = {"ManufacturingOrder": "'1000001'"}
    without = sap.post(f"{PROD}ReleaseOrder", params=params)
    assert without.status_code == 428
    wrong = sap.post(f"{PROD}ReleaseOrder", params=params, headers={"If-Match": "W/\"'19990101000000'\""})
    assert wrong.status_code == 412
    released = sap.post(f"{PROD}ReleaseOrder", params=params, headers={"If-Match": etag})
    assert released.status_code == 200, released.text
    message = released.json()["d"]["ReleaseOrder"]
    assert message["SystemMessageType"] == "S" and message["SystemMessageIdentification"] == "CO"
    assert json.loads(released.headers["sap-message"])["severity"] == "success"

    after = sap.get(f"{PROD}A_ProductionOrder_2('1000001')")
    assert after.json()["d"]["OrderIsReleased"] == "X"
    assert after.headers["etag"] != etag
    assert sap.post(f"{PROD}ReleaseOrder", params=params, headers={"If-Match": etag}).status_code == 412
    statuses = sap.get(f"{PROD}A_ProductionOrder_2('1000001')/to_ProductionOrderStatus").json()["d"]["results"]
    assert [s["StatusShortName"] for s in statuses] == ["REL"]


def test_query_options(sap: Sap) -> None:
    for number in ("1000010", "1000011", "1000012"):
        sap.order(number)
    page = sap.get(
        f"{PROD}A_ProductionOrder_2",
        **{
            "$filter": "ProductionPlant eq '1000' and Material eq 'FG-100'",
            "$orderby": "ManufacturingOrder desc",
            "$top": "2",
            "$skip": "1",
            "$select": "ManufacturingOrder,Material",
            "$inlinecount": "allpages",
        },
    ).json()["d"]
    assert page["__count"] == "3"
    assert [o["ManufacturingOrder"] for o in page["results"]] == ["1000011", "1000010"]
    assert set(page["results"][0]) == {"__metadata", "ManufacturingOrder", "Material"}
    assert sap.get(f"{PROD}A_ProductionOrder_2/$count").text == "3"
    bad = sap.get(f"{PROD}A_ProductionOrder_2", **{"$filter": "NoSuchProperty eq 'x'"})
    assert bad.status_code == 400
    missing = sap.get(f"{PROD}A_ProductionOrder_2('999')")
    assert missing.status_code == 404 and error_of(missing)["code"] == "/IWBEP/CM_MGW_RT/020"
    assert sap.get("/sap/opu/odata/sap/NO_SUCH_SRV/").status_code == 404
    metadata = sap.get(f"{CONF}$metadata")
    assert metadata.headers["content-type"].startswith("application/xml")
    assert b'Namespace="API_PROD_ORDER_CONFIRMATION_2_SRV"' in metadata.content


# --- confirmations ----------------------------------------------------------------------------


def test_confirmation_deep_insert_lookup_and_duplicate(sap: Sap) -> None:
    sap.order("1000020", release=True)
    external = str(uuid.uuid4())
    body = {
        "OrderID": "1000020",
        "OrderOperation": "0010",
        "ConfirmationYieldQuantity": "40",
        "ConfirmationScrapQuantity": "2",
        "OpConfirmedWorkQuantity1": "1.5",
        "OpWorkQuantityUnit1": "H",
        "ConfirmedExecutionStartDate": "/Date(1714521600000)/",
        "ConfirmedExecutionStartTime": "PT08H30M00S",
        "ExternalSystemConfirmation": external,
        "to_ProdnOrdConfMatlDocItm": [
            {
                "Material": "RM-1",
                "Plant": "1000",
                "StorageLocation": "0001",
                "GoodsMovementType": "261",
                "Reservation": "1000",
                "ReservationItem": "1",
                "EntryUnit": "KG",
                "QuantityInEntryUnit": "84",
            },
            {
                "Material": "FG-100",
                "Plant": "1000",
                "StorageLocation": "0001",
                "GoodsMovementType": "101",
                "EntryUnit": "EA",
                "QuantityInEntryUnit": "40",
                "Batch": "B-0001",
            },
        ],
    }
    created = sap.post(f"{CONF}ProdnOrdConf2", body)
    assert created.status_code == 201, created.text
    conf = created.json()["d"]
    assert conf["ConfirmationGroup"] and conf["ConfirmationCount"] == "1"
    assert conf["ExternalSystemConfirmation"] == external
    assert conf["ConfirmationYieldQuantity"] == "40.000" and conf["OpConfirmedWorkQuantity1"] == "1.500"
    assert conf["ConfirmedExecutionStartDate"] == "/Date(1714521600000)/"
    assert conf["ConfirmedExecutionStartTime"] == "PT08H30M00S"
    movements = conf["to_ProdnOrdConfMatlDocItm"]["results"]
    assert [m["GoodsMovementType"] for m in movements] == ["261", "101"]
    assert movements[0]["MaterialDocument"] == movements[1]["MaterialDocument"] != ""
    assert created.headers["location"].endswith(
        f"ProdnOrdConf2(ConfirmationGroup='{conf['ConfirmationGroup']}',ConfirmationCount='1')"
    )
    assert json.loads(created.headers["sap-message"])["code"] == "RU/100"

    found = sap.get(f"{CONF}ProdnOrdConf2", **{"$filter": f"ExternalSystemConfirmation eq guid'{external}'"})
    assert [c["ConfirmationCount"] for c in found.json()["d"]["results"]] == ["1"]
    by_order = sap.get(
        f"{CONF}ProdnOrdConf2", **{"$filter": "OrderID eq '1000020'", "$expand": "to_ProdnOrdConfMatlDocItm"}
    )
    assert len(by_order.json()["d"]["results"][0]["to_ProdnOrdConfMatlDocItm"]["results"]) == 2
    untyped = sap.get(f"{CONF}ProdnOrdConf2", **{"$filter": f"ExternalSystemConfirmation eq '{external}'"})
    assert untyped.status_code == 400  # Edm.Guid needs guid'...', as on SAP Gateway

    sap.admin("PATCH", "/rules", {"refuse_duplicate_keys": True})  # off by default: see the test below
    duplicate = sap.post(f"{CONF}ProdnOrdConf2", {**body, "to_ProdnOrdConfMatlDocItm": []})
    sap.admin("PATCH", "/rules", {"refuse_duplicate_keys": False})
    assert duplicate.status_code == 400
    error = error_of(duplicate)
    assert error["code"] == "ZPB/001"
    assert f"confirmation {conf['ConfirmationGroup']} counter 1" in error["message"]["value"]

    component = sap.get(f"{PROD}A_ProductionOrderComponent_2(Reservation='1000',ReservationItem='1')").json()["d"]
    assert component["WithdrawnQuantity"] == "84.000"
    item = sap.get(f"{PROD}A_ProductionOrder_2('1000020')/to_ProductionOrderItem").json()["d"]["results"][0]
    assert item["MfgOrderItemGoodsReceiptQty"] == "40.000"
    order = sap.get(f"{PROD}A_ProductionOrder_2('1000020')").json()["d"]
    assert order["OrderIsPartiallyConfirmed"] == "X" and order["OrderIsPartiallyDelivered"] == "X"

    backflushed = sap.confirm("1000020", "0020", "40", FinalConfirmationType="X")
    assert backflushed.status_code == 201, backflushed.text
    issued = backflushed.json()["d"]["to_ProdnOrdConfMatlDocItm"]["results"]
    assert [(m["Material"], m["QuantityInEntryUnit"]) for m in issued] == [("RM-2", "40.000")]
    again = sap.confirm("1000020", "0020", "1")
    assert again.status_code == 400 and error_of(again)["code"] == "RU/014"


def test_confirming_an_unreleased_or_completed_order_is_refused(sap: Sap) -> None:
    sap.order("1000030")
    refused = sap.confirm("1000030", "0010", "10")
    assert refused.status_code == 400
    error = error_of(refused)
    assert error["code"] == "BS/013"
    assert error["message"] == {"lang": "en", "value": "System status CRTD is active (ORD 1000030)"}
    inner = error["innererror"]
    assert inner["application"]["service_id"] == "API_PROD_ORDER_CONFIRMATION_2_SRV"
    assert len(inner["transactionid"]) == 32 and inner["Error_Resolution"]["SAP_Note"]
    assert inner["errordetails"][0] == {
        "ContentID": "",
        "code": "BS/013",
        "message": "System status CRTD is active (ORD 1000030)",
        "propertyref": "",
        "severity": "error",
        "target": "",
        "transition": False,
    }
    assert sap.release("1000030").status_code == 200
    etag = sap.get(f"{PROD}A_ProductionOrder_2('1000030')").headers["etag"]
    teco = sap.post(f"{PROD}TechlyCmpltOrder", params={"ManufacturingOrder": "'1000030'"}, headers={"If-Match": etag})
    assert teco.status_code == 200
    after_teco = sap.confirm("1000030", "0010", "10")
    assert error_of(after_teco)["message"]["value"] == "System status TECO is active (ORD 1000030)"
    assert sap.admin("GET", "/state")["counts"]["confirmations"] == 0


def test_over_confirmation_beyond_the_tolerance_is_refused(sap: Sap) -> None:
    sap.order("1000040", release=True)  # planned 100 EA, tolerance 10 %
    assert sap.confirm("1000040", "0010", "90", ConfirmationScrapQuantity="5").status_code == 201
    over = sap.confirm("1000040", "0010", "15", ConfirmationScrapQuantity="1")
    assert over.status_code == 400 and error_of(over)["code"] == "ZPB/002"
    assert "exceeds planned quantity 100 EA plus overdelivery tolerance 10 %" in error_of(over)["message"]["value"]
    assert sap.confirm("1000040", "0010", "15").status_code == 201  # 110 = 100 x 1.10


def test_cancelling_a_confirmation_reverses_it_and_its_goods_movements(sap: Sap) -> None:
    sap.order("1000045", release=True)
    confirmed = sap.confirm("1000045", "0020", "50")  # RM-2 is backflushed at operation 0020
    assert confirmed.status_code == 201
    conf = confirmed.json()["d"]
    assert [m["GoodsMovementType"] for m in conf["to_ProdnOrdConfMatlDocItm"]["results"]] == ["261"]
    params = {"ConfirmationGroup": f"'{conf['ConfirmationGroup']}'", "ConfirmationCount": "'1'"}
    cancelled = sap.post(f"{CONF}CancelProdnOrdConf", params=params)
    assert cancelled.status_code == 200, cancelled.text
    reversal = cancelled.json()["d"]
    assert reversal["IsReversal"] is True and reversal["ConfirmationCount"] == "2"
    original = sap.get(f"{CONF}ProdnOrdConf2(ConfirmationGroup='{conf['ConfirmationGroup']}',ConfirmationCount='1')")
    assert original.json()["d"]["IsReversed"] is True
    movements = sap.get(
        f"{CONF}ProdnOrdConf2(ConfirmationGroup='{conf['ConfirmationGroup']}',ConfirmationCount='2')"
        "/to_ProdnOrdConfMatlDocItm"
    ).json()["d"]["results"]
    assert [(m["GoodsMovementType"], m["QuantityInEntryUnit"]) for m in movements] == [("262", "50.000")]
    component = sap.get(f"{PROD}A_ProductionOrderComponent_2(Reservation='1000',ReservationItem='2')").json()["d"]
    assert component["WithdrawnQuantity"] == "0.000"
    again = sap.post(f"{CONF}CancelProdnOrdConf", params=params)
    assert again.status_code == 400 and error_of(again)["code"] == "ZPB/007"


def test_closed_posting_period_refuses_postings(sap: Sap) -> None:
    sap.order("1000050", release=True)
    sap.admin("PUT", "/rules", {"period_closed": True})
    refused = sap.confirm("1000050", "0010", "10", PostingDate="/Date(1714521600000)/")  # 2024-05-01
    assert refused.status_code == 400
    assert error_of(refused)["code"] == "M7/053"
    assert error_of(refused)["message"]["value"] == (
        "Posting only possible in periods 2024/07 and 2024/06 in company code 1000"
    )
    document = {
        "GoodsMovementCode": "03",
        "to_MaterialDocumentItem": [
            {
                "Material": "RM-1",
                "Plant": "1000",
                "GoodsMovementType": "261",
                "ManufacturingOrder": "1000050",
                "EntryUnit": "KG",
                "QuantityInEntryUnit": "1",
            }
        ],
    }
    assert error_of(sap.post(f"{MATDOC}A_MaterialDocumentHeader", document))["code"] == "M7/053"
    sap.admin("PATCH", "/rules", {"period_closed": False})
    assert sap.confirm("1000050", "0010", "10").status_code == 201


def test_locked_order_answers_a_transient_lock_error(sap: Sap) -> None:
    sap.order("1000060", release=True)
    sap.admin("PATCH", "/rules", {"locked_orders": {"1000060": "JSMITH"}})
    locked = sap.confirm("1000060", "0010", "10")
    assert locked.status_code == 400
    assert error_of(locked)["code"] == "MC/601"
    assert error_of(locked)["message"]["value"] == "Object requested is currently locked by user JSMITH"
    sap.admin("PATCH", "/rules", {"locked_orders": {}})
    assert sap.confirm("1000060", "0010", "10").status_code == 201


def test_rejecting_the_next_calls_of_a_service(sap: Sap) -> None:
    sap.order("1000065", release=True)
    sap.admin(
        "PATCH",
        "/rules",
        {
            "reject": [
                {
                    "service": "API_PROD_ORDER_CONFIRMATION_2_SRV",
                    "count": 2,
                    "code": "RU/999",
                    "message": "Simulated refusal",
                }
            ]
        },
    )
    assert [error_of(sap.confirm("1000065", "0010", "1"))["code"] for _ in range(2)] == ["RU/999", "RU/999"]
    assert sap.confirm("1000065", "0010", "1").status_code == 201
    assert sap.admin("GET", "/rules")["reject"] == []


# --- material documents, quality, maintenance -------------------------------------------------


def test_material_documents_261_101_reversal_and_lookup_by_header_text(sap: Sap) -> None:
    sap.order("1000070", release=True)
    issue = sap.post(
        f"{MATDOC}A_MaterialDocumentHeader",
        {
            "GoodsMovementCode": "03",
            "MaterialDocumentHeaderText": "MES-GI-0001",
            "ReferenceDocument": "GI-0001",
            "to_MaterialDocumentItem": [
                {
                    "Material": "RM-1",
                    "Plant": "1000",
                    "StorageLocation": "0001",
                    "GoodsMovementType": "261",
                    "ManufacturingOrder": "1000070",
                    "EntryUnit": "KG",
                    "QuantityInEntryUnit": "150",
                }
            ],
        },
    )
    assert issue.status_code == 201, issue.text
    header = issue.json()["d"]
    assert header["MaterialDocument"].startswith("49") and len(header["to_MaterialDocumentItem"]["results"]) == 1
    assert header["to_MaterialDocumentItem"]["results"][0]["Reservation"] == "1000"
    receipt = sap.post(
        f"{MATDOC}A_MaterialDocumentHeader",
        {
            "GoodsMovementCode": "02",
            "MaterialDocumentHeaderText": "MES-GR-0001",
            "to_MaterialDocumentItem": {
                "results": [
                    {
                        "Material": "FG-100",
                        "Plant": "1000",
                        "GoodsMovementType": "101",
                        "ManufacturingOrder": "1000070",
                        "EntryUnit": "EA",
                        "QuantityInEntryUnit": "100",
                        "Batch": "B1",
                    }
                ]
            },
        },
    )
    assert receipt.status_code == 201, receipt.text

    found = sap.get(
        f"{MATDOC}A_MaterialDocumentHeader",
        **{
            "$filter": "MaterialDocumentHeaderText eq 'MES-GI-0001' and ReferenceDocument eq 'GI-0001'",
            "$expand": "to_MaterialDocumentItem",
        },
    ).json()["d"]["results"]
    assert [d["MaterialDocument"] for d in found] == [header["MaterialDocument"]]
    assert found[0]["to_MaterialDocumentItem"]["results"][0]["QuantityInEntryUnit"] == "150.000"

    components = sap.get(f"{PROD}A_ProductionOrder_2('1000070')/to_ProductionOrderComponent").json()["d"]["results"]
    assert components[0]["WithdrawnQuantity"] == "150.000"
    order = sap.get(f"{PROD}A_ProductionOrder_2('1000070')").json()["d"]
    assert order["OrderIsDelivered"] == "X"

    too_much = sap.post(
        f"{MATDOC}A_MaterialDocumentHeader",
        {
            "GoodsMovementCode": "03",
            "to_MaterialDocumentItem": [
                {
                    "Material": "RM-1",
                    "Plant": "1000",
                    "GoodsMovementType": "262",
                    "ManufacturingOrder": "1000070",
                    "EntryUnit": "KG",
                    "QuantityInEntryUnit": "151",
                }
            ],
        },
    )
    assert error_of(too_much)["code"] == "ZPB/006"
    reverse = sap.post(
        f"{MATDOC}A_MaterialDocumentHeader",
        {
            "GoodsMovementCode": "02",
            "to_MaterialDocumentItem": [
                {
                    "Material": "FG-100",
                    "Plant": "1000",
                    "GoodsMovementType": "102",
                    "ManufacturingOrder": "1000070",
                    "EntryUnit": "EA",
                    "QuantityInEntryUnit": "30",
                }
            ],
        },
    )
    assert reverse.status_code == 201
    order = sap.get(f"{PROD}A_ProductionOrder_2('1000070')").json()["d"]
    assert order["OrderIsDelivered"] == "" and order["OrderIsPartiallyDelivered"] == "X"
    scrap = sap.post(
        f"{MATDOC}A_MaterialDocumentHeader",
        {
            "GoodsMovementCode": "03",
            "to_MaterialDocumentItem": [
                {
                    "Material": "RM-1",
                    "Plant": "1000",
                    "GoodsMovementType": "551",
                    "EntryUnit": "KG",
                    "QuantityInEntryUnit": "2",
                    "GoodsMovementReasonCode": "0001",
                    "CostCenter": "4711",
                }
            ],
        },
    )
    assert scrap.status_code == 201, scrap.text
    assert sap.admin("GET", "/state")["counts"]["material_documents"] == 4


def test_inspection_lot_and_usage_decision(sap: Sap) -> None:
    sap.order("1000080", release=True, inspection_lot_origin="04")
    receipt = sap.post(
        f"{MATDOC}A_MaterialDocumentHeader",
        {
            "GoodsMovementCode": "02",
            "to_MaterialDocumentItem": [
                {
                    "Material": "FG-100",
                    "Plant": "1000",
                    "GoodsMovementType": "101",
                    "ManufacturingOrder": "1000080",
                    "EntryUnit": "EA",
                    "QuantityInEntryUnit": "100",
                }
            ],
        },
    )
    assert receipt.status_code == 201
    lots = sap.get(f"{QM}A_InspectionLot", **{"$filter": "ManufacturingOrder eq '1000080'"}).json()["d"]["results"]
    assert len(lots) == 1 and lots[0]["InspectionLotOrigin"] == "04"
    lot = lots[0]["InspectionLot"]
    assert lots[0]["InspectionLotQuantity"] == "100.000" and lots[0]["InspectionLotHasUsageDecision"] is False
    assert lots[0]["__metadata"]["etag"].startswith("W/\"datetimeoffset'")

    decision = sap.post(
        f"{QM}A_InspLotUsageDecision",
        {
            "InspectionLot": lot,
            "InspLotUsageDecisionCodeGroup": "FG",
            "InspectionLotUsageDecisionCode": "A",
            "InspLotUsgeDcsnSelectedSet": "01",
            "InspLotUsageDecisionLevel": "L",
        },
    )
    assert decision.status_code == 201, decision.text
    assert decision.json()["d"]["InspLotUsageDecisionValuation"] == "A"
    lot_after = sap.get(f"{QM}A_InspectionLot('{lot}')").json()["d"]
    assert lot_after["InspectionLotHasUsageDecision"] is True and lot_after["InspLotQtyToFree"] == "100.000"
    second = sap.post(f"{QM}A_InspLotUsageDecision", {"InspectionLot": lot, "InspectionLotUsageDecisionCode": "R"})
    assert second.status_code == 400 and error_of(second)["code"] == "QA/501"


def test_maintenance_notification_lookup_by_external_reference(sap: Sap) -> None:
    created = sap.post(
        f"{PM}MaintenanceNotification",
        {
            "NotificationText": "Filler F-01 stopped",
            "NotificationType": "M2",
            "MaintPriority": "1",
            "TechnicalObject": "F-01",
            "TechObjIsEquipOrFuncnlLoc": "EAMS_EQUI",
            "MaintenanceObjectIsDown": True,
            "MaintNotifExtReferenceNumber": "DT-4711",
            "MalfunctionStartDate": "/Date(1714521600000)/",
            "MalfunctionStartTime": "PT07H15M00S",
        },
    )
    assert created.status_code == 201, created.text
    number = created.json()["d"]["MaintenanceNotification"]
    assert created.json()["d"]["MaintPriorityDesc"] == "Very high"
    found = sap.get(f"{PM}MaintenanceNotification", **{"$filter": "MaintNotifExtReferenceNumber eq 'DT-4711'"})
    assert [n["MaintenanceNotification"] for n in found.json()["d"]["results"]] == [number]
    patched = sap.http.patch(
        f"{PM}MaintenanceNotification('{number}')",
        headers={"X-CSRF-Token": sap.token},
        json={"MalfunctionEndDate": "/Date(1714528800000)/", "MalfunctionEndTime": "PT09H15M00S"},
    )
    assert patched.status_code == 204
    after = sap.get(f"{PM}MaintenanceNotification('{number}')").json()["d"]
    assert after["MalfunctionEndDateTime"] == "/Date(1714554900000+0000)/"
    unknown = sap.post(f"{PM}MaintenanceNotification", {"NotificationText": "x", "NotificationType": "M2", "Foo": 1})
    assert unknown.status_code == 400 and error_of(unknown)["code"] == "ZPB/011"


# --- faults -----------------------------------------------------------------------------------


def _statuses(sap: Sap, count: int) -> list[int]:
    codes = []
    for _ in range(count):
        codes.append(sap.http.get(f"{PROD}$metadata").status_code)
        assert sap.http.get("/admin/health").status_code == 200  # faults never hit the admin API
    return codes


def test_503_ratio_is_repeatable_with_a_seed(sap: Sap) -> None:
    faults = {"error_503_ratio": 0.5, "seed": 7}
    sap.admin("PUT", "/faults", faults)
    first = _statuses(sap, 20)
    assert 0 < first.count(503) < 20 and set(first) == {200, 503}
    sap.admin("PUT", "/faults", faults)
    assert _statuses(sap, 20) == first
    sap.admin("PUT", "/faults", {"error_503_ratio": 1.0})
    page = sap.http.get(f"{PROD}$metadata")
    assert page.status_code == 503 and "Service cannot be reached" in page.text
    sap.admin("PUT", "/faults", {"error_503_ratio": 1.0, "error_503_format": "json"})
    assert error_of(sap.http.get(f"{PROD}$metadata"))["code"] == "ZPB/503"
    sap.admin("DELETE", "/faults")
    assert sap.http.get(f"{PROD}$metadata").status_code == 200


def test_fault_after_commit_stores_the_posting(sap: Sap) -> None:
    sap.order("1000090", release=True)
    sap.fetch_token(CONF)
    sap.admin("PUT", "/faults", {"after_commit_ratio": 1.0})
    external = str(uuid.uuid4())
    lost = sap.confirm("1000090", "0010", "10", ExternalSystemConfirmation=external)
    assert lost.status_code == 503
    sap.admin("DELETE", "/faults")
    stored = sap.get(f"{CONF}ProdnOrdConf2", **{"$filter": f"ExternalSystemConfirmation eq guid'{external}'"})
    assert len(stored.json()["d"]["results"]) == 1  # look up by the external key before retrying
    sap.admin("PATCH", "/rules", {"refuse_duplicate_keys": True})
    refused = sap.confirm("1000090", "0010", "10", ExternalSystemConfirmation=external)
    assert error_of(refused)["code"] == "ZPB/001"
    assert sap.admin("GET", "/state")["counts"]["confirmations"] == 1
    sap.admin("PATCH", "/rules", {"refuse_duplicate_keys": False})
    # By default the simulator takes the re-post, as a real S/4 may: only a look-up prevents a double.
    retry = sap.confirm("1000090", "0010", "10", ExternalSystemConfirmation=external)
    assert retry.status_code == 201, retry.text
    again = sap.get(f"{CONF}ProdnOrdConf2", **{"$filter": f"ExternalSystemConfirmation eq guid'{external}'"})
    assert len(again.json()["d"]["results"]) == 2 and sap.admin("GET", "/state")["counts"]["confirmations"] == 2


def test_hanging_requests_trigger_client_timeouts(sap: Sap) -> None:
    sap.admin("PUT", "/faults", {"hang_ratio": 1.0, "hang_seconds": 1.0, "services": ["API_MAINTNOTIFICATION"]})
    with pytest.raises(httpx.ReadTimeout):
        sap.http.get(f"{PM}MaintenanceNotification", timeout=0.3)
    assert sap.get(f"{PROD}A_ProductionOrder_2").status_code == 200  # other services unaffected
    sap.admin("DELETE", "/faults")


# --- events and persistence -------------------------------------------------------------------


def test_business_events_are_cloud_events(sap: Sap, receiver: Receiver) -> None:
    sap.order("1000100")
    created = receiver.wait_for("sap.s4.beh.productionorder.v1.ProductionOrder.Created.v1")
    assert created[0]["data"] == {"ManufacturingOrder": "1000100"}
    assert sap.release("1000100").status_code == 200
    # S/4HANA has no Released event type (ORDER-FACTS 2.1): a release is reported as Changed.
    [released] = receiver.wait_for("sap.s4.beh.productionorder.v1.ProductionOrder.Changed.v1")
    assert released["specversion"] == "1.0"
    assert released["source"] == "/default/sap.s4.beh/100"
    assert released["datacontenttype"] == "application/json"
    assert uuid.UUID(released["id"]) and released["time"].endswith("Z")
    assert released["data"] == {"ManufacturingOrder": "1000100"}
    headers = next(h for h, body in receiver.received if body["id"] == released["id"])
    assert headers["Authorization"] == "Bearer hook"
    assert headers["Content-Type"] == "application/cloudevents+json"


def _wait(condition: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_state_survives_a_restart_and_webhook_failures_do_not_break_requests(tmp_path: Path) -> None:
    db = str(tmp_path / "restart.db")
    dead_webhook = f"http://127.0.0.1:{free_port()}/events"
    with SimulatorServer(db, webhook_url=dead_webhook) as first:
        sap = Sap(first.url)
        sap.order("1000110")
        assert sap.release("1000110").status_code == 200  # the failing webhook does not matter
        external = str(uuid.uuid4())
        assert sap.confirm("1000110", "0010", "10", ExternalSystemConfirmation=external).status_code == 201
        sap.admin("PATCH", "/rules", {"locked_orders": {"1000110": "JSMITH"}})
        assert _wait(lambda: all(e["status"] == "failed" for e in sap.admin("GET", "/events")))
        sap.http.close()
    with SimulatorServer(db) as second:
        sap = Sap(second.url)
        order = sap.get(f"{PROD}A_ProductionOrder_2('1000110')").json()["d"]
        assert order["OrderIsReleased"] == "X" and order["OrderIsPartiallyConfirmed"] == "X"
        found = sap.get(f"{CONF}ProdnOrdConf2", **{"$filter": f"ExternalSystemConfirmation eq guid'{external}'"})
        assert len(found.json()["d"]["results"]) == 1
        assert error_of(sap.confirm("1000110", "0010", "10"))["code"] == "MC/601"  # rules persisted too
        sap.admin("PATCH", "/rules", {"locked_orders": {}})
        assert sap.confirm("1000110", "0010", "10").json()["d"]["ConfirmationCount"] == "2"
        sap.http.close()


def test_order_changes_are_changed_events_and_status_flags(sap: Sap, receiver: Receiver) -> None:
    """CO02-like changes and status changes: one `Changed` event each (S/4HANA has no other type), the
    header's `LastChangeDateTime` moves on, the flags and the status list follow, postings are refused."""
    changed = "sap.s4.beh.productionorder.v1.ProductionOrder.Changed.v1"
    sap.order("1000200", release=True)
    stamp = sap.admin("GET", "/orders/1000200")["LastChangeDateTime"]
    after = sap.admin("POST", "/orders/1000200/change", {
        "quantity": "150", "end": "2030-01-31",
        "operations": [{"action": "add", "operation": "0030", "work_center": "QC-01"},
                       {"action": "remove", "operation": "0020"}],
        "components": [{"action": "add", "item": "0030", "material": "RM-3", "quantity": "4", "unit": "EA"},
                       {"action": "remove", "item": "0010"}]})
    assert after["TotalQuantity"] == "150" and after["LastChangeDateTime"] > stamp
    assert after["MfgOrderPlannedEndDate"].startswith("2030-01-31")
    ops = {o["ManufacturingOrderOperation"]: o for o in after["operations"]}
    assert ops["0020"]["OperationIsDeleted"] == "X" and ops["0030"]["OpPlannedTotalQuantity"] == "150"
    comps = {c["BillOfMaterialItemNumber"]: c for c in after["components"]}
    assert comps["0010"]["MatlCompIsMarkedForDeletion"] is True and comps["0030"]["Material"] == "RM-3"
    odata = sap.get(f"{PROD}A_ProductionOrder_2('1000200')").json()["d"]
    assert odata["LastChangeDateTime"] == after["LastChangeDateTime"] and odata["OrderIsLocked"] == ""
    locked = sap.admin("POST", "/orders/1000200/status", {"action": "lock"})["order"]
    assert locked["OrderIsLocked"] == "X" and "LKD" in locked["system_status"]
    assert "System status LKD is active" in error_of(sap.confirm("1000200", "0010", "10"))["message"]["value"]
    sap.admin("POST", "/orders/1000200/status", {"action": "unlock"})
    flagged = sap.admin("POST", "/orders/1000200/status", {"action": "deletion_flag"})["order"]
    assert flagged["OrderIsMarkedForDeletion"] == "X" and "DLFL" in flagged["system_status"]
    refused = sap.http.post("/admin/orders/1000200/change", json={"quantity": "10"})
    assert refused.status_code >= 400 and "DLFL" in refused.text  # a flagged order cannot be changed
    # Released, changed, locked, unlocked, flagged: one Changed event each; no type but Created and Changed.
    assert _wait(lambda: sum(body["type"] == changed for _, body in receiver.received) == 5), receiver.received
    assert {body["type"].rsplit(".", 2)[-2] for _, body in receiver.received} == {"Created", "Changed"}


def test_duplicate_postings_are_taken_by_default_and_refused_on_request(sap: Sap) -> None:
    """A real S/4 is not known to refuse a second posting with the same external key: by default the
    simulator takes it (so exactly-once must come from the connector's look-up); refusing is a rule."""
    sap.order("1000095", release=True)
    sap.fetch_token(CONF)
    external = str(uuid.uuid4())
    assert sap.confirm("1000095", "0010", "5", ExternalSystemConfirmation=external).status_code == 201
    assert sap.confirm("1000095", "0010", "5", ExternalSystemConfirmation=external).status_code == 201
    found = sap.get(f"{CONF}ProdnOrdConf2", **{"$filter": f"ExternalSystemConfirmation eq guid'{external}'"})
    assert len(found.json()["d"]["results"]) == 2
    sap.fetch_token(MATDOC)
    document = {
        "GoodsMovementCode": "03", "ReferenceDocument": "0123456789abcdef",
        "MaterialDocumentHeaderText": "0123456789abcdef", "to_MaterialDocumentItem": [{
            "Material": "RM-1", "Plant": "1000", "StorageLocation": "0001", "GoodsMovementType": "261",
            "ManufacturingOrder": "1000095", "EntryUnit": "KG", "QuantityInEntryUnit": "1"}],
    }
    assert sap.post(f"{MATDOC}A_MaterialDocumentHeader", document).status_code == 201
    assert sap.post(f"{MATDOC}A_MaterialDocumentHeader", document).status_code == 201
    assert sap.admin("PATCH", "/rules", {"refuse_duplicate_keys": True})["refuse_duplicate_keys"] is True
    try:
        assert error_of(sap.confirm("1000095", "0010", "5", ExternalSystemConfirmation=external))["code"] == "ZPB/001"
        assert error_of(sap.post(f"{MATDOC}A_MaterialDocumentHeader", document))["code"] == "ZPB/009"
    finally:
        sap.admin("PATCH", "/rules", {"refuse_duplicate_keys": False})
    counts = sap.admin("GET", "/state")["counts"]
    assert counts["confirmations"] == 2
    traffic = sap.admin("GET", "/traffic")
    assert any(t["method"] == "GET" and t["service"] == "API_PROD_ORDER_CONFIRMATION_2_SRV"
               and external in t["query"].get("$filter", "") and t["status"] == 200 for t in traffic)
